using System.Buffers;
using System.Text;
using System.Text.Json;
using Marginal.Core.Errors;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Wire.Anthropic;

/// <summary>
/// Writes the gateway's answer in Anthropic's Messages format: one <c>message</c> object, or its event stream
/// (<c>message_start</c>, <c>ping</c>, per content block <c>content_block_start</c> / <c>content_block_delta</c> /
/// <c>content_block_stop</c>, then <c>message_delta</c> with the stop reason and usage, and <c>message_stop</c>).
/// Usage follows Anthropic's split: <c>input_tokens</c> are the prompt tokens neither read from nor written to the
/// prompt cache, beside <c>cache_read_input_tokens</c> and <c>cache_creation_input_tokens</c>.
/// </summary>
public sealed class MessagesWriter(string model) : IDisposable
{

    private readonly TypedEventWriter _events = new();
    private int _blocks;
    private bool _textOpen;
    private bool _sawToolUse;

    public string Id { get; } = "msg_" + Guid.NewGuid().ToString("N");

    /// <summary>Writes the whole <c>message</c> object of a finished, non-streamed answer.</summary>
    public void WriteMessage(IBufferWriter<byte> output, ChatResponse response)
    {
        var json = _events.Json(output);
        json.WriteStartObject();
        WriteHeader(json);
        json.WriteStartArray("content"u8);
        var text = new StringBuilder();
        foreach (var message in response.Messages)
        {
            foreach (var content in message.Contents)
            {
                if (content is TextContent { Text: { Length: > 0 } t })
                {
                    text.Append(t);
                }
            }
        }
        if (text.Length > 0)
        {
            json.WriteStartObject();
            json.WriteString("type"u8, "text"u8);
            json.WriteString("text"u8, text.ToString());
            json.WriteEndObject();
        }
        foreach (var message in response.Messages)
        {
            foreach (var content in message.Contents)
            {
                if (content is FunctionCallContent call)
                {
                    _sawToolUse = true;
                    WriteToolUse(json, call, withInput: true);
                }
            }
        }
        json.WriteEndArray();
        WriteStop(json, response.FinishReason);
        WriteUsage(json, response.Usage);
        json.WriteEndObject();
        json.Flush();
    }

    /// <summary>Opens the stream: <c>message_start</c> (usage so far: none counted yet) and a <c>ping</c>.</summary>
    public void Start(IBufferWriter<byte> output)
    {
        var json = _events.Start(output, "message_start");
        json.WriteStartObject("message"u8);
        WriteHeader(json);
        json.WriteStartArray("content"u8);
        json.WriteEndArray();
        json.WriteNull("stop_reason"u8);
        json.WriteNull("stop_sequence"u8);
        WriteUsage(json, null);
        json.WriteEndObject();
        TypedEventWriter.End(output, json);
        TypedEventWriter.End(output, _events.Start(output, "ping"));
    }

    /// <summary>Writes the events of one streamed update; returns false when it carried nothing a client sees.</summary>
    public bool Write(IBufferWriter<byte> output, ChatResponseUpdate update)
    {
        var wrote = false;
        foreach (var content in update.Contents)
        {
            if (content is TextContent { Text: { Length: > 0 } text })
            {
                if (!_textOpen)
                {
                    var start = _events.Start(output, "content_block_start");
                    start.WriteNumber("index"u8, _blocks);
                    start.WriteStartObject("content_block"u8);
                    start.WriteString("type"u8, "text"u8);
                    start.WriteString("text"u8, ""u8);
                    start.WriteEndObject();
                    TypedEventWriter.End(output, start);
                    _textOpen = true;
                }
                var delta = _events.Start(output, "content_block_delta");
                delta.WriteNumber("index"u8, _blocks);
                delta.WriteStartObject("delta"u8);
                delta.WriteString("type"u8, "text_delta"u8);
                delta.WriteString("text"u8, text);
                delta.WriteEndObject();
                TypedEventWriter.End(output, delta);
                wrote = true;
            }
            else if (content is FunctionCallContent call)
            {
                CloseText(output);
                _sawToolUse = true;
                var start = _events.Start(output, "content_block_start");
                start.WriteNumber("index"u8, _blocks);
                start.WritePropertyName("content_block"u8);
                WriteToolUse(start, call, withInput: false);
                TypedEventWriter.End(output, start);
                var delta = _events.Start(output, "content_block_delta");
                delta.WriteNumber("index"u8, _blocks);
                delta.WriteStartObject("delta"u8);
                delta.WriteString("type"u8, "input_json_delta"u8);
                delta.WriteString("partial_json"u8, ToolArguments.Json(call));
                delta.WriteEndObject();
                TypedEventWriter.End(output, delta);
                StopBlock(output);
                wrote = true;
            }
        }
        return wrote;
    }

    /// <summary>Closes the open block and ends the stream: <c>message_delta</c> (stop reason, usage) and <c>message_stop</c>.</summary>
    public void Complete(IBufferWriter<byte> output, ChatFinishReason? finishReason, UsageDetails? usage)
    {
        CloseText(output);
        var delta = _events.Start(output, "message_delta");
        delta.WriteStartObject("delta"u8);
        WriteStop(delta, finishReason);
        delta.WriteEndObject();
        WriteUsage(delta, usage);
        TypedEventWriter.End(output, delta);
        TypedEventWriter.End(output, _events.Start(output, "message_stop"));
    }

    /// <summary>Ends a stream that has started with Anthropic's <c>error</c> event.</summary>
    public void Fail(IBufferWriter<byte> output, GatewayException error)
    {
        var json = _events.Start(output, "error");
        json.WriteStartObject("error"u8);
        json.WriteString("type"u8, AnthropicErrorJson.TypeOf(error.Kind));
        json.WriteString("message"u8, error.Message);
        json.WriteEndObject();
        TypedEventWriter.End(output, json);
    }

    public void Dispose() => _events.Dispose();

    private void CloseText(IBufferWriter<byte> output)
    {
        if (_textOpen)
        {
            _textOpen = false;
            StopBlock(output);
        }
    }

    private void StopBlock(IBufferWriter<byte> output)
    {
        var stop = _events.Start(output, "content_block_stop");
        stop.WriteNumber("index"u8, _blocks++);
        TypedEventWriter.End(output, stop);
    }

    private void WriteHeader(Utf8JsonWriter json)
    {
        json.WriteString("id"u8, Id);
        json.WriteString("type"u8, "message"u8);
        json.WriteString("role"u8, "assistant"u8);
        json.WriteString("model"u8, model);
    }

    private void WriteStop(Utf8JsonWriter json, ChatFinishReason? reason)
    {
        var stop = reason == ChatFinishReason.Length ? "max_tokens"
            : reason == ChatFinishReason.ToolCalls || _sawToolUse ? "tool_use"
            : reason == ChatFinishReason.ContentFilter ? "refusal"
            : "end_turn";
        json.WriteString("stop_reason"u8, stop);
        json.WriteNull("stop_sequence"u8);
    }

    private static void WriteToolUse(Utf8JsonWriter json, FunctionCallContent call, bool withInput)
    {
        json.WriteStartObject();
        json.WriteString("type"u8, "tool_use"u8);
        json.WriteString("id"u8, call.CallId);
        json.WriteString("name"u8, call.Name);
        json.WritePropertyName("input"u8);
        if (withInput)
        {
            json.WriteRawValue(ToolArguments.Json(call), skipInputValidation: true);
        }
        else
        {
            json.WriteStartObject();
            json.WriteEndObject();
        }
        json.WriteEndObject();
    }


    private static void WriteUsage(Utf8JsonWriter json, UsageDetails? usage)
    {
        var read = usage?.CachedInputTokenCount ?? 0;
        var written = usage?.AdditionalCounts is { } counts && counts.TryGetValue(Core.Pricing.TokenUsage.CacheWriteTokensKey, out var w) ? w : 0;
        json.WriteStartObject("usage"u8);
        json.WriteNumber("input_tokens"u8, Math.Max(0, (usage?.InputTokenCount ?? 0) - read - written));
        json.WriteNumber("cache_creation_input_tokens"u8, written);
        json.WriteNumber("cache_read_input_tokens"u8, read);
        json.WriteNumber("output_tokens"u8, usage?.OutputTokenCount ?? 0);
        json.WriteEndObject();
    }



}
