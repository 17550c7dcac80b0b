using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;

using Marginal.Gateway.Wire.OpenAI;

namespace Marginal.Gateway.Wire.Responses;

/// <summary>
/// Writes the gateway's answer as an OpenAI Responses API response object, or as its typed stream events
/// (<c>event: response.output_text.delta</c> / <c>data: {…}</c>): <c>response.created</c>, <c>response.in_progress</c>,
/// per output item <c>response.output_item.added</c>, the content part or function-call argument events and
/// <c>response.output_item.done</c>, then <c>response.completed</c> with the whole response and its usage (cached and
/// reasoning tokens included). Every event carries its <c>sequence_number</c>. Items appear in the order the model
/// produced them: the text message first, then each function call.
/// </summary>
public sealed class ResponsesWriter : IDisposable
{

    private readonly ResponsesEcho _echo;
    private readonly List<OutputItem> _items = [];
    private readonly TypedEventWriter _events = new();
    private int _sequence;
    private OutputItem? _open;

    /// <summary>A writer for one response to a request for <paramref name="model"/> (a route alias stays an alias).</summary>
    public ResponsesWriter(string model, ResponsesEcho echo, DateTimeOffset createdAt)
    {
        Model = model;
        _echo = echo;
        CreatedAt = createdAt.ToUnixTimeSeconds();
        Id = "resp_" + Guid.NewGuid().ToString("N");
    }

    public string Id { get; }
    public string Model { get; }
    public long CreatedAt { get; }

    /// <summary>Writes the whole response object of a finished, non-streamed answer.</summary>
    public void WriteResponse(IBufferWriter<byte> output, ChatResponse response)
    {
        foreach (var message in response.Messages)
        {
            foreach (var content in message.Contents)
            {
                Collect(content);
            }
        }
        Close();
        var json = _events.Json(output);
        WriteObject(json, response.FinishReason, response.Usage, completed: true);
        json.Flush();
    }

    /// <summary>Opens the stream: <c>response.created</c> and <c>response.in_progress</c>.</summary>
    public void Start(IBufferWriter<byte> output)
    {
        foreach (var type in (ReadOnlySpan<string>)["response.created", "response.in_progress"])
        {
            var json = Event(output, type);
            json.WritePropertyName("response"u8);
            WriteObject(json, null, null, completed: false);
            TypedEventWriter.End(output, json);
        }
    }

    /// <summary>Writes the events for one streamed update; returns false when it carried nothing a client sees.</summary>
    public bool Write(IBufferWriter<byte> output, ChatResponseUpdate update)
    {
        var wrote = false;
        foreach (var content in update.Contents)
        {
            if (content is TextContent { Text: { Length: > 0 } text })
            {
                if (_open is not { Kind: ItemKind.Message })
                {
                    CloseOpen(output);
                    OpenMessage(output);
                }
                _open!.Text.Append(text);
                var json = Event(output, "response.output_text.delta");
                json.WriteString("item_id"u8, _open.Id);
                json.WriteNumber("output_index"u8, _open.Index);
                json.WriteNumber("content_index"u8, 0);
                json.WriteString("delta"u8, text);
                json.WriteStartArray("logprobs"u8);
                json.WriteEndArray();
                TypedEventWriter.End(output, json);
                wrote = true;
            }
            else if (content is FunctionCallContent call)
            {
                CloseOpen(output);
                var item = Add(ItemKind.FunctionCall, call);
                var added = Event(output, "response.output_item.added");
                added.WriteNumber("output_index"u8, item.Index);
                added.WritePropertyName("item"u8);
                WriteItem(added, item, done: false);
                TypedEventWriter.End(output, added);
                var delta = Event(output, "response.function_call_arguments.delta");
                delta.WriteString("item_id"u8, item.Id);
                delta.WriteNumber("output_index"u8, item.Index);
                delta.WriteString("delta"u8, item.Arguments);
                TypedEventWriter.End(output, delta);
                var done = Event(output, "response.function_call_arguments.done");
                done.WriteString("item_id"u8, item.Id);
                done.WriteNumber("output_index"u8, item.Index);
                done.WriteString("arguments"u8, item.Arguments);
                TypedEventWriter.End(output, done);
                ItemDone(output, item);
                wrote = true;
            }
        }
        return wrote;
    }

    /// <summary>Closes what is open and writes <c>response.completed</c> (or <c>response.incomplete</c>) with the usage.</summary>
    public void Complete(IBufferWriter<byte> output, ChatFinishReason? finishReason, UsageDetails? usage)
    {
        CloseOpen(output);
        var incomplete = IncompleteReason(finishReason) is not null;
        var json = Event(output, incomplete ? "response.incomplete" : "response.completed");
        json.WritePropertyName("response"u8);
        WriteObject(json, finishReason, usage, completed: true);
        TypedEventWriter.End(output, json);
    }

    /// <summary>Fails a stream that has started: an <c>error</c> event, as OpenAI ends a stream it cannot finish.</summary>
    public void Fail(IBufferWriter<byte> output, string message, string? code)
    {
        var json = Event(output, "error");
        json.WriteString("code"u8, code ?? "server_error");
        json.WriteString("message"u8, message);
        json.WriteNull("param"u8);
        TypedEventWriter.End(output, json);
    }

    public void Dispose() => _events.Dispose();

    private Utf8JsonWriter Event(IBufferWriter<byte> output, string type)
    {
        var json = _events.Start(output, type);
        json.WriteNumber("sequence_number"u8, _sequence++);
        return json;
    }

    private void Collect(AIContent content)
    {
        if (content is TextContent { Text: { Length: > 0 } text })
        {
            if (_open is not { Kind: ItemKind.Message })
            {
                Close();
                _open = Add(ItemKind.Message, null);
            }
            _open.Text.Append(text);
        }
        else if (content is FunctionCallContent call)
        {
            Close();
            Add(ItemKind.FunctionCall, call);
        }
    }

    private void Close() => _open = null;

    private void OpenMessage(IBufferWriter<byte> output)
    {
        _open = Add(ItemKind.Message, null);
        var added = Event(output, "response.output_item.added");
        added.WriteNumber("output_index"u8, _open.Index);
        added.WritePropertyName("item"u8);
        WriteItem(added, _open, done: false);
        TypedEventWriter.End(output, added);
        var part = Event(output, "response.content_part.added");
        part.WriteString("item_id"u8, _open.Id);
        part.WriteNumber("output_index"u8, _open.Index);
        part.WriteNumber("content_index"u8, 0);
        part.WritePropertyName("part"u8);
        WriteTextPart(part, "");
        TypedEventWriter.End(output, part);
    }

    private void CloseOpen(IBufferWriter<byte> output)
    {
        if (_open is not { Kind: ItemKind.Message } message)
        {
            return;
        }
        _open = null;
        var text = message.Text.ToString();
        var done = Event(output, "response.output_text.done");
        done.WriteString("item_id"u8, message.Id);
        done.WriteNumber("output_index"u8, message.Index);
        done.WriteNumber("content_index"u8, 0);
        done.WriteString("text"u8, text);
        done.WriteStartArray("logprobs"u8);
        done.WriteEndArray();
        TypedEventWriter.End(output, done);
        var part = Event(output, "response.content_part.done");
        part.WriteString("item_id"u8, message.Id);
        part.WriteNumber("output_index"u8, message.Index);
        part.WriteNumber("content_index"u8, 0);
        part.WritePropertyName("part"u8);
        WriteTextPart(part, text);
        TypedEventWriter.End(output, part);
        ItemDone(output, message);
    }

    private void ItemDone(IBufferWriter<byte> output, OutputItem item)
    {
        var json = Event(output, "response.output_item.done");
        json.WriteNumber("output_index"u8, item.Index);
        json.WritePropertyName("item"u8);
        WriteItem(json, item, done: true);
        TypedEventWriter.End(output, json);
    }

    private OutputItem Add(ItemKind kind, FunctionCallContent? call)
    {
        var item = new OutputItem(kind, _items.Count, (kind == ItemKind.Message ? "msg_" : "fc_") + Guid.NewGuid().ToString("N"))
        {
            CallId = call?.CallId ?? "",
            Name = call?.Name ?? "",
            Arguments = call is null ? "" : ToolArguments.Json(call),
        };
        _items.Add(item);
        return item;
    }


    private void WriteObject(Utf8JsonWriter json, ChatFinishReason? finishReason, UsageDetails? usage, bool completed)
    {
        var incomplete = completed ? IncompleteReason(finishReason) : null;
        json.WriteStartObject();
        json.WriteString("id"u8, Id);
        json.WriteString("object"u8, "response"u8);
        json.WriteNumber("created_at"u8, CreatedAt);
        json.WriteString("status"u8, !completed ? "in_progress" : incomplete is null ? "completed" : "incomplete");
        json.WriteBoolean("background"u8, false);
        json.WriteNull("error"u8);
        if (incomplete is null)
        {
            json.WriteNull("incomplete_details"u8);
        }
        else
        {
            json.WriteStartObject("incomplete_details"u8);
            json.WriteString("reason"u8, incomplete);
            json.WriteEndObject();
        }
        WriteStringOrNull(json, "instructions"u8, _echo.Instructions);
        WriteNumberOrNull(json, "max_output_tokens"u8, _echo.MaxOutputTokens);
        json.WriteString("model"u8, Model);
        json.WriteStartArray("output"u8);
        if (completed)
        {
            foreach (var item in _items)
            {
                WriteItem(json, item, done: true);
            }
        }
        json.WriteEndArray();
        json.WriteBoolean("parallel_tool_calls"u8, _echo.ParallelToolCalls ?? true);
        json.WriteNull("previous_response_id"u8);
        WriteRaw(json, "reasoning"u8, _echo.Reasoning, "{\"effort\":null,\"summary\":null}");
        json.WriteBoolean("store"u8, false);
        WriteNumberOrNull(json, "temperature"u8, _echo.Temperature);
        WriteRaw(json, "text"u8, _echo.Text, "{\"format\":{\"type\":\"text\"}}");
        WriteRaw(json, "tool_choice"u8, _echo.ToolChoice, "\"auto\"");
        WriteRaw(json, "tools"u8, _echo.Tools, "[]");
        WriteNumberOrNull(json, "top_p"u8, _echo.TopP);
        json.WriteString("truncation"u8, "disabled"u8);
        if (completed && usage is not null)
        {
            var input = usage.InputTokenCount ?? 0;
            var output = usage.OutputTokenCount ?? 0;
            json.WriteStartObject("usage"u8);
            json.WriteNumber("input_tokens"u8, input);
            json.WriteStartObject("input_tokens_details"u8);
            json.WriteNumber("cached_tokens"u8, usage.CachedInputTokenCount ?? 0);
            json.WriteEndObject();
            json.WriteNumber("output_tokens"u8, output);
            json.WriteStartObject("output_tokens_details"u8);
            json.WriteNumber("reasoning_tokens"u8, usage.ReasoningTokenCount ?? 0);
            json.WriteEndObject();
            json.WriteNumber("total_tokens"u8, usage.TotalTokenCount ?? input + output);
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("usage"u8);
        }
        WriteStringOrNull(json, "user"u8, _echo.User);
        WriteRaw(json, "metadata"u8, _echo.Metadata, "{}");
        json.WriteEndObject();
    }

    private static void WriteItem(Utf8JsonWriter json, OutputItem item, bool done)
    {
        json.WriteStartObject();
        json.WriteString("id"u8, item.Id);
        if (item.Kind == ItemKind.Message)
        {
            json.WriteString("type"u8, "message"u8);
            json.WriteString("status"u8, done ? "completed"u8 : "in_progress"u8);
            json.WriteString("role"u8, "assistant"u8);
            json.WriteStartArray("content"u8);
            if (done)
            {
                WriteTextPart(json, item.Text.ToString());
            }
            json.WriteEndArray();
        }
        else
        {
            json.WriteString("type"u8, "function_call"u8);
            json.WriteString("status"u8, done ? "completed"u8 : "in_progress"u8);
            json.WriteString("call_id"u8, item.CallId);
            json.WriteString("name"u8, item.Name);
            json.WriteString("arguments"u8, done ? item.Arguments : "");
        }
        json.WriteEndObject();
    }

    private static void WriteTextPart(Utf8JsonWriter json, string text)
    {
        json.WriteStartObject();
        json.WriteString("type"u8, "output_text"u8);
        json.WriteString("text"u8, text);
        json.WriteStartArray("annotations"u8);
        json.WriteEndArray();
        json.WriteStartArray("logprobs"u8);
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static string? IncompleteReason(ChatFinishReason? reason) =>
        reason == ChatFinishReason.Length ? "max_output_tokens" : reason == ChatFinishReason.ContentFilter ? "content_filter" : null;




    private static void WriteStringOrNull(Utf8JsonWriter json, ReadOnlySpan<byte> name, string? value)
    {
        if (value is null) { json.WriteNull(name); } else { json.WriteString(name, value); }
    }

    private static void WriteNumberOrNull(Utf8JsonWriter json, ReadOnlySpan<byte> name, double? value)
    {
        if (value is { } v) { json.WriteNumber(name, v); } else { json.WriteNull(name); }
    }

    private static void WriteRaw(Utf8JsonWriter json, ReadOnlySpan<byte> name, JsonElement? value, string fallback)
    {
        json.WritePropertyName(name);
        if (value is { } v)
        {
            v.WriteTo(json);
        }
        else
        {
            json.WriteRawValue(fallback, skipInputValidation: true);
        }
    }

    private enum ItemKind { Message, FunctionCall }

    private sealed class OutputItem(ItemKind kind, int index, string id)
    {
        public ItemKind Kind { get; } = kind;
        public int Index { get; } = index;
        public string Id { get; } = id;
        public StringBuilder Text { get; } = new();
        public string CallId { get; init; } = "";
        public string Name { get; init; } = "";
        public string Arguments { get; init; } = "";
    }
}
