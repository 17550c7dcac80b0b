using System.Buffers;
using System.IO.Pipelines;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Marginal.Core.Requests;
using Marginal.Gateway.Buffers;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Providers.OpenAI;

/// <summary>
/// Chat completions read straight off the wire: the request written with <see cref="Utf8JsonWriter"/>, each streamed
/// <c>data:</c> event parsed once into a <see cref="ChatResponseUpdate"/>, a non-streamed answer once into a
/// <see cref="ChatResponse"/>. The OpenAI SDK parses every event into its
/// own model and Microsoft.Extensions.AI converts that again, which cost 3.4× the CPU and 4.4× the allocation per
/// streamed answer (docs/benchmarks.md, section 5). Only requests whose body this writer can express exactly — text
/// messages and the plain sampling options, no tools, no JSON schema, no images or audio — take this path; the SDK
/// serves the rest. A test holds both paths to the same request body and the same updates.
/// </summary>
internal sealed class OpenAIChatStream(HttpClient http, Uri baseUrl, string? apiKey, string provider, TimeSpan readTimeout, TimeProvider time)
{
    private static readonly MediaTypeHeaderValue JsonType = new("application/json");
    private readonly Uri _completions = new(baseUrl.AbsoluteUri.TrimEnd('/') + "/chat/completions");
    // The SDK sends a placeholder when the upstream takes no key; so does this path, so upstreams see one behaviour.
    private readonly AuthenticationHeaderValue _authorization = new("Bearer", apiKey ?? "no-key");

    /// <summary>True when every message is plain text and no option needs the SDK's writer.</summary>
    public static bool CanWrite(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        if (options is not null && (options.Tools is { Count: > 0 } || options.ToolMode is not null || options.RawRepresentationFactory is not null
            || options.TopK is not null || options.ConversationId is not null || options.Instructions is not null
            || options.ResponseFormat is ChatResponseFormatJson { Schema: not null }
            || options.AdditionalProperties?.ContainsKey(OpenAIOnlyFields.Logprobs) == true
            || options.AdditionalProperties?.ContainsKey(OpenAIOnlyFields.TopLogprobs) == true
            || options.AdditionalProperties?.ContainsKey(OpenAIOnlyFields.LogitBias) == true))
        {
            return false;
        }
        foreach (var message in messages)
        {
            if (message.Role != ChatRole.System && message.Role != ChatRole.User && message.Role != ChatRole.Assistant && message.Role.Value != "developer")
            {
                return false;
            }
            foreach (var content in message.Contents)
            {
                if (content is not TextContent)
                {
                    return false;
                }
            }
        }
        return true;
    }

    public async IAsyncEnumerable<ChatResponseUpdate> StreamAsync(IEnumerable<ChatMessage> messages, ChatOptions? options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _completions) { Content = Body(messages, options) };
        request.Headers.Authorization = _authorization;
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw ProviderErrors.FromStatus(provider, (int)response.StatusCode, ProviderErrors.ReadMessage(text), RetryAfterOf(response));
        }
        var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            // Each read must bring bytes within the provider's timeout, as the SDK's network timeout does.
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var reader = PipeReader.Create(body);
            var updates = new List<ChatResponseUpdate>();
            var repeats = new Repeats();
            try
            {
                while (true)
                {
                    stall.CancelAfter(readTimeout);
                    var result = await reader.ReadAsync(stall.Token).ConfigureAwait(false);
                    var buffer = result.Buffer;
                    var done = ReadEvents(ref buffer, updates, repeats, result.IsCompleted);
                    reader.AdvanceTo(buffer.Start, buffer.End);
                    foreach (var update in updates)
                    {
                        yield return update;
                    }
                    updates.Clear();
                    if (done || result.IsCompleted)
                    {
                        yield break;
                    }
                }
            }
            finally
            {
                await reader.CompleteAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// A non-streamed completion: the same body without <c>stream</c>, the answer parsed once into a
    /// <see cref="ChatResponse"/>. The body must arrive within the provider's timeout after the headers, as with the SDK.
    /// </summary>
    public async Task<ChatResponse> CompleteAsync(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _completions) { Content = Body(messages, options, stream: false) };
        request.Headers.Authorization = _authorization;
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw ProviderErrors.FromStatus(provider, (int)response.StatusCode, ProviderErrors.ReadMessage(text), RetryAfterOf(response));
        }
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stall.CancelAfter(readTimeout);
        var body = await response.Content.ReadAsByteArrayAsync(stall.Token).ConfigureAwait(false);
        // Malformed JSON throws JsonException, which the capacity stage classifies as a malformed upstream answer.
        using var document = JsonDocument.Parse(body);
        return ToResponse(document.RootElement);
    }

    private static ChatResponse ToResponse(JsonElement completion)
    {
        if (completion.ValueKind != JsonValueKind.Object)
        {
            throw new JsonException("The answer is not a chat completion object.");
        }
        var (id, model, created) = HeaderOf(completion);
        var message = new ChatMessage { Role = ChatRole.Assistant, MessageId = id, CreatedAt = created };
        var response = new ChatResponse(message) { ResponseId = id, ModelId = model, CreatedAt = created };
        if (FirstChoice(completion) is { } choice)
        {
            AddText(choice, "message"u8, message.Contents);
            response.FinishReason = FinishReasonOf(choice);
        }
        if (completion.TryGetProperty("usage"u8, out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            response.Usage = UsageOf(usage);
        }
        return response;
    }

    private TimeSpan? RetryAfterOf(HttpResponseMessage response)
    {
        if (response.Headers.TryGetValues("retry-after-ms", out var ms)
            && double.TryParse(ms.First(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var millis) && millis >= 0)
        {
            return TimeSpan.FromMilliseconds(millis);
        }
        return response.Headers.TryGetValues("retry-after", out var values) ? ProviderErrors.ParseRetryAfter(values.First(), time) : null;
    }

    /// <summary>
    /// Parses every complete line of <paramref name="buffer"/> (and, at the end of the body, the last one): each
    /// <c>data:</c> line is one event; comments, <c>event:</c> lines and blank lines are skipped. True at <c>[DONE]</c>.
    /// </summary>
    private bool ReadEvents(ref ReadOnlySequence<byte> buffer, List<ChatResponseUpdate> updates, Repeats repeats, bool final)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (true)
        {
            ReadOnlySequence<byte> line;
            if (reader.TryReadTo(out line, (byte)'\n', advancePastDelimiter: true))
            {
                buffer = buffer.Slice(reader.Position);
            }
            else if (final && !reader.End)
            {
                line = buffer.Slice(reader.Position);
                buffer = buffer.Slice(buffer.End);
                reader.AdvanceToEnd();
            }
            else
            {
                return false;
            }
            if (line.Length > 0 && line.Slice(line.Length - 1).FirstSpan[0] == (byte)'\r')
            {
                line = line.Slice(0, line.Length - 1);
            }
            var data = new SequenceReader<byte>(line);
            if (!data.IsNext("data:"u8, advancePast: true))
            {
                continue;
            }
            data.IsNext((byte)' ', advancePast: true);
            var json = line.Slice(data.Position);
            if (json.Length == 0)
            {
                continue;
            }
            if (json.Length == 6 && json.FirstSpan.Length >= 6 && json.FirstSpan.StartsWith("[DONE]"u8))
            {
                return true;
            }
            updates.Add(ReadChunk(json, repeats));
        }
    }

    /// <summary>The strings every event of one stream repeats, kept so that each event does not allocate them again.</summary>
    private sealed class Repeats
    {
        public string? Id;
        public string? Model;
    }

    /// <summary>
    /// One stream chunk read with <see cref="Utf8JsonReader"/> in a single pass, without building a document: the
    /// header, the first choice's delta text (content, then refusal) and finish reason, and the usage when present.
    /// An <c>error</c> object sent after the stream started becomes a provider error. Malformed JSON throws
    /// <see cref="JsonException"/>, which the capacity stage classifies as a malformed upstream answer.
    /// </summary>
    private ChatResponseUpdate ReadChunk(ReadOnlySequence<byte> json, Repeats repeats)
    {
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("A stream event is not a JSON object.");
        }
        var update = new ChatResponseUpdate { Role = ChatRole.Assistant };
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("choices"u8))
            {
                reader.Read();
                ReadFirstChoice(ref reader, update);
            }
            else if (reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                update.ResponseId = update.MessageId = Repeated(ref reader, ref repeats.Id);
            }
            else if (reader.ValueTextEquals("model"u8))
            {
                reader.Read();
                update.ModelId = Repeated(ref reader, ref repeats.Model);
            }
            else if (reader.ValueTextEquals("created"u8))
            {
                reader.Read();
                update.CreatedAt = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var seconds) ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null;
                reader.Skip();
            }
            else if (reader.ValueTextEquals("usage"u8) || reader.ValueTextEquals("error"u8))
            {
                var usage = reader.ValueTextEquals("usage"u8);
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }
                using var value = JsonDocument.ParseValue(ref reader);
                if (!usage)
                {
                    // An error sent inside a stream that had already started: no status line is left to carry it.
                    var error = value.RootElement;
                    var message = error.TryGetProperty("message"u8, out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
                    throw ProviderErrors.FromStatus(provider, 500, message, null);
                }
                update.Contents.Add(new UsageContent(UsageOf(value.RootElement)));
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        return update;
    }

    /// <summary>The string value under the reader, as the same instance as last time when its text has not changed.</summary>
    private static string? Repeated(ref Utf8JsonReader reader, ref string? last)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return null;
        }
        return last is not null && reader.ValueTextEquals(last) ? last : last = reader.GetString();
    }

    /// <summary>Reads the <c>choices</c> array under the reader: the first choice's delta text and finish reason; the rest are skipped.</summary>
    private static void ReadFirstChoice(ref Utf8JsonReader reader, ChatResponseUpdate update)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return;
        }
        if (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
        {
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("delta"u8))
                {
                    reader.Read();
                    ReadDelta(ref reader, update.Contents);
                }
                else if (reader.ValueTextEquals("finish_reason"u8))
                {
                    reader.Read();
                    update.FinishReason = reader.TokenType != JsonTokenType.String ? null
                        : reader.ValueTextEquals("stop"u8) ? ChatFinishReason.Stop
                        : reader.ValueTextEquals("length"u8) ? ChatFinishReason.Length
                        : reader.ValueTextEquals("tool_calls"u8) || reader.ValueTextEquals("function_call"u8) ? ChatFinishReason.ToolCalls
                        : reader.ValueTextEquals("content_filter"u8) ? ChatFinishReason.ContentFilter
                        : new ChatFinishReason(reader.GetString()!);
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        else
        {
            reader.Skip();
        }
        while (reader.TokenType != JsonTokenType.EndArray && reader.Read())
        {
            reader.Skip();
        }
    }

    /// <summary>Adds a delta's text under the reader: its content, then any refusal, as <see cref="AddText"/> does for a document.</summary>
    private static void ReadDelta(ref Utf8JsonReader reader, IList<AIContent> contents)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        string? refusal = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var content = reader.ValueTextEquals("content"u8);
            var refused = !content && reader.ValueTextEquals("refusal"u8);
            reader.Read();
            if ((content || refused) && reader.TokenType == JsonTokenType.String && (reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length) > 0)
            {
                var text = reader.GetString()!;
                if (content)
                {
                    contents.Add(new TextContent(text));
                }
                else
                {
                    refusal = text;
                }
            }
            else
            {
                reader.Skip();
            }
        }
        if (refusal is not null)
        {
            contents.Add(new TextContent(refusal));
        }
    }

    /// <summary>The <c>id</c>, <c>model</c> and <c>created</c> of a completion or of a stream chunk.</summary>
    private static (string? Id, string? Model, DateTimeOffset? Created) HeaderOf(JsonElement root) => (
        root.TryGetProperty("id"u8, out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null,
        root.TryGetProperty("model"u8, out var model) && model.ValueKind == JsonValueKind.String ? model.GetString() : null,
        root.TryGetProperty("created"u8, out var created) && created.ValueKind == JsonValueKind.Number ? DateTimeOffset.FromUnixTimeSeconds(created.GetInt64()) : null);

    private static JsonElement? FirstChoice(JsonElement root) =>
        root.TryGetProperty("choices"u8, out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0 ? choices[0] : null;

    /// <summary>The text of a choice's <c>message</c> (or stream <c>delta</c>): its content, then any refusal.</summary>
    private static void AddText(JsonElement choice, ReadOnlySpan<byte> part, IList<AIContent> contents)
    {
        if (!choice.TryGetProperty(part, out var message) || message.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        if (message.TryGetProperty("content"u8, out var content) && content.ValueKind == JsonValueKind.String && content.GetString() is { Length: > 0 } text)
        {
            contents.Add(new TextContent(text));
        }
        if (message.TryGetProperty("refusal"u8, out var refusal) && refusal.ValueKind == JsonValueKind.String && refusal.GetString() is { Length: > 0 } refused)
        {
            contents.Add(new TextContent(refused));
        }
    }

    private static ChatFinishReason? FinishReasonOf(JsonElement choice) =>
        !choice.TryGetProperty("finish_reason"u8, out var value) || value.ValueKind != JsonValueKind.String ? null
        : value.ValueEquals("stop"u8) ? ChatFinishReason.Stop
        : value.ValueEquals("length"u8) ? ChatFinishReason.Length
        : value.ValueEquals("tool_calls"u8) || value.ValueEquals("function_call"u8) ? ChatFinishReason.ToolCalls
        : value.ValueEquals("content_filter"u8) ? ChatFinishReason.ContentFilter
        : new ChatFinishReason(value.GetString()!);

    /// <summary>
    /// OpenAI's usage, with cached prompt tokens from <c>prompt_tokens_details.cached_tokens</c> or, from DeepSeek,
    /// <c>prompt_cache_hit_tokens</c> (DeepSeek API docs, "Context Caching"; OpenAI's field wins when both are sent).
    /// </summary>
    internal static UsageDetails UsageOf(JsonElement usage)
    {
        var details = new UsageDetails
        {
            InputTokenCount = Count(usage, "prompt_tokens"u8),
            OutputTokenCount = Count(usage, "completion_tokens"u8),
            TotalTokenCount = Count(usage, "total_tokens"u8),
        };
        if (usage.TryGetProperty("prompt_tokens_details"u8, out var prompt) && prompt.ValueKind == JsonValueKind.Object)
        {
            details.CachedInputTokenCount = Count(prompt, "cached_tokens"u8);
        }
        if (details.CachedInputTokenCount is null or 0 && Count(usage, "prompt_cache_hit_tokens"u8) is > 0 and var hits)
        {
            details.CachedInputTokenCount = hits;
        }
        if (usage.TryGetProperty("completion_tokens_details"u8, out var completion) && completion.ValueKind == JsonValueKind.Object)
        {
            details.ReasoningTokenCount = Count(completion, "reasoning_tokens"u8);
        }
        return details;
    }

    private static long? Count(JsonElement parent, ReadOnlySpan<byte> name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) ? n : null;

    /// <summary>The request body, as the SDK writes it for the same messages and options (streamed unless told).</summary>
    /// <summary>The request body, in pooled buffers (returned when the request is disposed) with long texts written in segments (<see cref="LargeJson"/>).</summary>
    internal static PooledJsonContent Body(IEnumerable<ChatMessage> messages, ChatOptions? options, bool stream = true)
    {
        var buffer = new PooledBufferWriter();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model"u8, options?.ModelId);
            json.WriteStartArray("messages"u8);
            foreach (var message in messages)
            {
                json.WriteStartObject();
                json.WriteString("role"u8, message.Role.Value);
                LargeJson.WriteString(json, "content"u8, message.Text);
                if (message.AuthorName is { } name)
                {
                    json.WriteString("name"u8, name);
                }
                json.WriteEndObject();
            }
            json.WriteEndArray();
            if (options is not null)
            {
                WriteOptions(json, options);
            }
            if (stream)
            {
                json.WriteBoolean("stream"u8, true);
                json.WriteStartObject("stream_options"u8);
                json.WriteBoolean("include_usage"u8, true);
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        return new PooledJsonContent(buffer);
    }

    private static void WriteOptions(Utf8JsonWriter json, ChatOptions options)
    {
        if (options.FrequencyPenalty is { } frequency)
        {
            json.WriteNumber("frequency_penalty"u8, frequency);
        }
        if (options.MaxOutputTokens is { } max)
        {
            json.WriteNumber("max_completion_tokens"u8, max);
        }
        if (options.PresencePenalty is { } presence)
        {
            json.WriteNumber("presence_penalty"u8, presence);
        }
        if (options.ResponseFormat is ChatResponseFormatJson)
        {
            json.WriteStartObject("response_format"u8);
            json.WriteString("type"u8, "json_object"u8);
            json.WriteEndObject();
        }
        else if (options.ResponseFormat is ChatResponseFormatText)
        {
            json.WriteStartObject("response_format"u8);
            json.WriteString("type"u8, "text"u8);
            json.WriteEndObject();
        }
        if (options.Seed is { } seed)
        {
            json.WriteNumber("seed"u8, seed);
        }
        if (options.StopSequences is { Count: > 0 } stops)
        {
            json.WriteStartArray("stop"u8);
            foreach (var stop in stops)
            {
                json.WriteStringValue(stop);
            }
            json.WriteEndArray();
        }
        if (options.Temperature is { } temperature)
        {
            json.WriteNumber("temperature"u8, temperature);
        }
        if (options.TopP is { } topP)
        {
            json.WriteNumber("top_p"u8, topP);
        }
        if (options.Reasoning?.Effort is { } effort)
        {
            json.WriteString("reasoning_effort"u8, effort switch
            {
                ReasoningEffort.None => "none",
                ReasoningEffort.Low => "low",
                ReasoningEffort.Medium => "medium",
                ReasoningEffort.High => "high",
                ReasoningEffort.ExtraHigh => "xhigh",
                _ => effort.ToString().ToLowerInvariant(),
            });
        }
        if (options.GetGatewayContext() is { } context)
        {
            if (context.EndUser is { } user)
            {
                json.WriteString("user"u8, user);
            }
            if (context.Metadata is { Count: > 0 } metadata)
            {
                json.WriteStartObject("metadata"u8);
                foreach (var (key, value) in metadata)
                {
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
        }
    }
}
