using System.Buffers;
using System.Text.Json;
using Marginal.Gateway.Providers;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Wire.OpenAI;

/// <summary>
/// Writes Microsoft.Extensions.AI responses as OpenAI chat completions: one JSON object, or server-sent
/// event chunks (<c>data: {…}\n\n</c>, then <c>data: [DONE]\n\n</c>). Writes straight into the response's
/// buffer writer; no intermediate strings.
/// </summary>
public static class ChatResponseWriter
{
    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };
    private static ReadOnlySpan<byte> DataPrefix => "data: "u8;
    private static ReadOnlySpan<byte> EventEnd => "\n\n"u8;
    private static ReadOnlySpan<byte> Done => "data: [DONE]\n\n"u8;

    /// <summary>Writes a complete <c>chat.completion</c> object.</summary>
    /// <summary>The upstream's <c>logprobs</c> object when the client asked for it and the provider returned one, else null.</summary>
    private static void WriteLogprobs(Utf8JsonWriter json, AdditionalPropertiesDictionary? properties)
    {
        if (properties is not null && properties.TryGetValue(OpenAIOnlyFields.ResponseLogprobs, out var value) && value is JsonElement logprobs)
        {
            json.WritePropertyName("logprobs"u8);
            logprobs.WriteTo(json);
            return;
        }
        json.WriteNull("logprobs"u8);
    }

    public static void WriteCompletion(IBufferWriter<byte> output, ChatResponse response, string fallbackModel, TimeProvider time)
    {
        using var json = new Utf8JsonWriter(output, WriterOptions);
        json.WriteStartObject();
        json.WriteString("id"u8, response.ResponseId ?? NewId());
        json.WriteString("object"u8, "chat.completion"u8);
        json.WriteNumber("created"u8, (response.CreatedAt ?? time.GetUtcNow()).ToUnixTimeSeconds());
        json.WriteString("model"u8, response.ModelId ?? fallbackModel);
        json.WriteStartArray("choices"u8);
        json.WriteStartObject();
        json.WriteNumber("index"u8, 0);
        json.WriteStartObject("message"u8);
        json.WriteString("role"u8, "assistant"u8);
        var text = response.Text;
        var toolCalls = 0;
        foreach (var message in response.Messages)
        {
            foreach (var content in message.Contents)
            {
                toolCalls += content is FunctionCallContent ? 1 : 0;
            }
        }
        if (text.Length > 0 || toolCalls == 0)
        {
            json.WriteString("content"u8, text);
        }
        else
        {
            json.WriteNull("content"u8);
        }
        json.WriteNull("refusal"u8);
        if (toolCalls > 0)
        {
            json.WriteStartArray("tool_calls"u8);
            var index = 0;
            foreach (var message in response.Messages)
            {
                foreach (var content in message.Contents)
                {
                    if (content is FunctionCallContent call)
                    {
                        WriteToolCall(json, call, index++, includeIndex: false);
                    }
                }
            }
            json.WriteEndArray();
        }
        json.WriteEndObject();
        WriteLogprobs(json, response.AdditionalProperties);
        json.WriteString("finish_reason"u8, FinishReason(response.FinishReason, toolCalls > 0));
        json.WriteEndObject();
        json.WriteEndArray();
        if (response.Usage is { } usage)
        {
            WriteUsage(json, usage);
        }
        json.WriteEndObject();
    }

    /// <summary>
    /// Writes one <c>chat.completion.chunk</c> event for <paramref name="update"/>. Usage is left out here:
    /// OpenAI sends it in a chunk of its own (<see cref="WriteUsageChunk"/>). Returns false, writing nothing,
    /// when the update carries nothing a client would see.
    /// </summary>
    public static bool WriteChunk(IBufferWriter<byte> output, ChatResponseUpdate update, StreamState state)
    {
        var hasText = false;
        var hasCalls = false;
        foreach (var content in update.Contents)
        {
            hasText |= content is TextContent;
            hasCalls |= content is FunctionCallContent;
        }
        var first = !state.RoleSent;
        // Some adapters repeat the finish reason on later updates (OpenAI's usage-only chunk); OpenAI sends it once.
        var finishReason = state.FinishSent ? null : update.FinishReason;
        if (!first && !hasText && !hasCalls && finishReason is null)
        {
            return false;
        }
        state.Remember(update);
        output.Write(DataPrefix);
        {
            var json = state.JsonWriter(output);
            WriteChunkHeader(json, state);
            json.WriteStartArray("choices"u8);
            json.WriteStartObject();
            json.WriteNumber("index"u8, 0);
            json.WriteStartObject("delta"u8);
            if (first)
            {
                json.WriteString("role"u8, "assistant"u8);
                state.RoleSent = true;
            }
            if (hasText || first)
            {
                json.WritePropertyName("content"u8);
                json.WriteStringValueSegment(ReadOnlySpan<char>.Empty, isFinalSegment: false);
                foreach (var content in update.Contents)
                {
                    if (content is TextContent t && t.Text is { } s)
                    {
                        json.WriteStringValueSegment(s, isFinalSegment: false);
                    }
                }
                json.WriteStringValueSegment(ReadOnlySpan<char>.Empty, isFinalSegment: true);
            }
            if (hasCalls)
            {
                json.WriteStartArray("tool_calls"u8);
                foreach (var content in update.Contents)
                {
                    if (content is FunctionCallContent call)
                    {
                        WriteToolCall(json, call, state.ToolCallCount++, includeIndex: true);
                    }
                }
                json.WriteEndArray();
            }
            json.WriteEndObject();
            WriteLogprobs(json, update.AdditionalProperties);
            if (finishReason is { } reason)
            {
                state.FinishSent = true;
                json.WriteString("finish_reason"u8, FinishReason(reason, state.ToolCallCount > 0));
            }
            else
            {
                json.WriteNull("finish_reason"u8);
            }
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
            json.Flush();
        }
        output.Write(EventEnd);
        return true;
    }

    /// <summary>Writes the final usage chunk (empty <c>choices</c>) that <c>stream_options.include_usage</c> asks for.</summary>
    public static void WriteUsageChunk(IBufferWriter<byte> output, UsageDetails usage, StreamState state)
    {
        output.Write(DataPrefix);
        {
            var json = state.JsonWriter(output);
            WriteChunkHeader(json, state);
            json.WriteStartArray("choices"u8);
            json.WriteEndArray();
            WriteUsage(json, usage);
            json.WriteEndObject();
            json.Flush();
        }
        output.Write(EventEnd);
    }

    /// <summary>
    /// Writes the request's cost as an SSE comment line (<c>: x-marginal-cost-usd 0.00042</c>), which SSE clients skip:
    /// a stream's headers leave before its cost is known. <c>unpriced</c> when the model has no price; a retry the ledger
    /// already held adds <c>duplicate</c>.
    /// </summary>
    public static void WriteCostComment(IBufferWriter<byte> output, decimal? cost, bool billed)
    {
        var text = cost is { } c ? c.ToString(System.Globalization.CultureInfo.InvariantCulture) : "unpriced";
        System.Text.EncodingExtensions.GetBytes(System.Text.Encoding.UTF8, $": x-marginal-cost-usd {text}{(billed ? "" : " duplicate")}\n\n", output);
    }

    /// <summary>Writes <c>data: [DONE]</c>.</summary>
    public static void WriteDone(IBufferWriter<byte> output) => output.Write(Done);

    /// <summary>Writes an error event, OpenAI's way of failing a stream that has already started.</summary>
    public static void WriteErrorEvent(IBufferWriter<byte> output, string message, string type, string? code)
    {
        output.Write(DataPrefix);
        using (var json = new Utf8JsonWriter(output, WriterOptions))
        {
            OpenAIErrorJson.WriteBody(json, message, type, null, code);
        }
        output.Write(EventEnd);
    }

    private static void WriteChunkHeader(Utf8JsonWriter json, StreamState state)
    {
        json.WriteStartObject();
        json.WriteString("id"u8, state.Id);
        json.WriteString("object"u8, "chat.completion.chunk"u8);
        json.WriteNumber("created"u8, state.Created);
        json.WriteString("model"u8, state.Model);
    }

    private static void WriteToolCall(Utf8JsonWriter json, FunctionCallContent call, int index, bool includeIndex)
    {
        json.WriteStartObject();
        if (includeIndex)
        {
            json.WriteNumber("index"u8, index);
        }
        json.WriteString("id"u8, call.CallId);
        json.WriteString("type"u8, "function"u8);
        json.WriteStartObject("function"u8);
        json.WriteString("name"u8, call.Name);
        json.WriteString("arguments"u8, call.Arguments is null ? "{}" : JsonSerializer.Serialize(call.Arguments, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>))));
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteUsage(Utf8JsonWriter json, UsageDetails usage)
    {
        var input = usage.InputTokenCount ?? 0;
        var output = usage.OutputTokenCount ?? 0;
        json.WriteStartObject("usage"u8);
        json.WriteNumber("prompt_tokens"u8, input);
        json.WriteNumber("completion_tokens"u8, output);
        json.WriteNumber("total_tokens"u8, usage.TotalTokenCount ?? input + output);
        json.WriteStartObject("prompt_tokens_details"u8);
        json.WriteNumber("cached_tokens"u8, usage.CachedInputTokenCount ?? 0);
        json.WriteEndObject();
        json.WriteStartObject("completion_tokens_details"u8);
        json.WriteNumber("reasoning_tokens"u8, usage.ReasoningTokenCount ?? 0);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static string FinishReason(ChatFinishReason? reason, bool hasToolCalls)
    {
        if (reason is null)
        {
            return hasToolCalls ? "tool_calls" : "stop";
        }
        var value = reason.Value;
        return value == ChatFinishReason.Stop ? "stop"
            : value == ChatFinishReason.Length ? "length"
            : value == ChatFinishReason.ToolCalls ? "tool_calls"
            : value == ChatFinishReason.ContentFilter ? "content_filter"
            : value.Value;
    }

    internal static string NewId() => "chatcmpl-" + Guid.NewGuid().ToString("N");

    /// <summary>
    /// What a stream needs to keep between chunks: its id, creation time and model, whether the role and the finish
    /// reason went out, and one JSON writer reused for every chunk. One per stream; not thread-safe.
    /// </summary>
    public sealed class StreamState(string model, long created) : IDisposable
    {
        private Utf8JsonWriter? _json;

        /// <summary>The stream's JSON writer, pointed at <paramref name="output"/> and empty.</summary>
        internal Utf8JsonWriter JsonWriter(IBufferWriter<byte> output)
        {
            if (_json is null)
            {
                _json = new Utf8JsonWriter(output, WriterOptions);
            }
            else
            {
                _json.Reset(output);
            }
            return _json;
        }

        public void Dispose() => _json?.Dispose();

        public string Id { get; private set; } = NewId();
        public long Created { get; private set; } = created;
        public string Model { get; private set; } = model;
        public bool RoleSent { get; set; }
        public bool FinishSent { get; set; }
        public int ToolCallCount { get; set; }
        private bool _fromUpstream;

        /// <summary>Adopts the upstream's id, time and model from its first chunk, so clients see what the upstream sent.</summary>
        public void Remember(ChatResponseUpdate update)
        {
            if (_fromUpstream)
            {
                return;
            }
            _fromUpstream = true;
            if (update.ResponseId is { Length: > 0 } id) { Id = id; }
            if (update.CreatedAt is { } at) { Created = at.ToUnixTimeSeconds(); }
            if (update.ModelId is { Length: > 0 } m) { Model = m; }
        }
    }
}
