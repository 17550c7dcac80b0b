using System.Buffers;
using System.IO.Pipelines;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Marginal.Benchmarks;

/// <summary>
/// The yardstick for the OpenAI SDK adapter: the least an OpenAI-compatible <see cref="IChatClient"/> has to do
/// over <see cref="HttpClient"/> — write the request with <see cref="Utf8JsonWriter"/>, read the answer with
/// <see cref="JsonDocument"/> (or SSE events off a <see cref="PipeReader"/>). It handles text messages and the
/// common options only; it exists to measure what the SDK's generality costs, not to serve traffic.
/// </summary>
public sealed class LeanOpenAIChatClient(HttpClient http, Uri endpoint) : IChatClient
{
    private static readonly MediaTypeHeaderValue Json = new("application/json");
    private readonly Uri _completions = new(endpoint.AbsoluteUri.TrimEnd('/') + "/chat/completions");

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var request = CreateRequest(messages, options, stream: false);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var document = await JsonDocument.ParseAsync(body, default, cancellationToken);
        var root = document.RootElement;
        var choice = root.GetProperty("choices"u8)[0];
        var message = choice.GetProperty("message"u8);
        var text = message.TryGetProperty("content"u8, out var content) && content.ValueKind == JsonValueKind.String ? content.GetString() : null;
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text))
        {
            ResponseId = root.GetProperty("id"u8).GetString(),
            ModelId = root.GetProperty("model"u8).GetString(),
            CreatedAt = DateTimeOffset.FromUnixTimeSeconds(root.GetProperty("created"u8).GetInt64()),
            FinishReason = ToFinishReason(choice.GetProperty("finish_reason"u8)),
            Usage = root.TryGetProperty("usage"u8, out var usage) && usage.ValueKind == JsonValueKind.Object ? ToUsage(usage) : null,
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var request = CreateRequest(messages, options, stream: true);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        var reader = PipeReader.Create(body);
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(cancellationToken);
                var buffer = result.Buffer;
                var updates = new List<ChatResponseUpdate>();
                var done = ReadEvents(ref buffer, updates);
                reader.AdvanceTo(buffer.Start, buffer.End);
                foreach (var update in updates)
                {
                    yield return update;
                }
                if (done || result.IsCompleted)
                {
                    yield break;
                }
            }
        }
        finally
        {
            await reader.CompleteAsync();
        }
    }

    /// <summary>Parses every complete <c>data: …\n\n</c> event in <paramref name="buffer"/>; true at <c>[DONE]</c>.</summary>
    private static bool ReadEvents(ref ReadOnlySequence<byte> buffer, List<ChatResponseUpdate> updates)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (reader.TryReadTo(out ReadOnlySequence<byte> line, "\n\n"u8, advancePastDelimiter: true))
        {
            buffer = buffer.Slice(reader.Position);
            var data = new SequenceReader<byte>(line);
            if (!data.IsNext("data: "u8, advancePast: true))
            {
                continue;
            }
            var json = line.Slice(data.Position);
            if (json.FirstSpan.StartsWith("[DONE]"u8))
            {
                return true;
            }
            using var document = JsonDocument.Parse(json);
            updates.Add(ToUpdate(document.RootElement));
        }
        return false;
    }

    private static ChatResponseUpdate ToUpdate(JsonElement chunk)
    {
        var update = new ChatResponseUpdate
        {
            Role = ChatRole.Assistant,
            ResponseId = chunk.GetProperty("id"u8).GetString(),
            ModelId = chunk.GetProperty("model"u8).GetString(),
            CreatedAt = DateTimeOffset.FromUnixTimeSeconds(chunk.GetProperty("created"u8).GetInt64()),
        };
        var choices = chunk.GetProperty("choices"u8);
        if (choices.GetArrayLength() > 0)
        {
            var choice = choices[0];
            if (choice.GetProperty("delta"u8).TryGetProperty("content"u8, out var content) && content.ValueKind == JsonValueKind.String)
            {
                update.Contents.Add(new TextContent(content.GetString()));
            }
            update.FinishReason = ToFinishReason(choice.GetProperty("finish_reason"u8));
        }
        if (chunk.TryGetProperty("usage"u8, out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            update.Contents.Add(new UsageContent(ToUsage(usage)));
        }
        return update;
    }

    private HttpRequestMessage CreateRequest(IEnumerable<ChatMessage> messages, ChatOptions? options, bool stream)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model"u8, options?.ModelId);
            json.WriteStartArray("messages"u8);
            foreach (var message in messages)
            {
                json.WriteStartObject();
                json.WriteString("role"u8, message.Role.Value);
                json.WriteString("content"u8, message.Text);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            if (options?.Temperature is { } temperature)
            {
                json.WriteNumber("temperature"u8, temperature);
            }
            if (options?.MaxOutputTokens is { } maxTokens)
            {
                json.WriteNumber("max_completion_tokens"u8, maxTokens);
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
        var content = new ReadOnlyMemoryContent(buffer.WrittenMemory);
        content.Headers.ContentType = Json;
        return new HttpRequestMessage(HttpMethod.Post, _completions) { Content = content };
    }

    private static ChatFinishReason? ToFinishReason(JsonElement value) => value.ValueKind != JsonValueKind.String ? null : value.ValueEquals("stop"u8) ? ChatFinishReason.Stop
        : value.ValueEquals("length"u8) ? ChatFinishReason.Length
        : value.ValueEquals("tool_calls"u8) ? ChatFinishReason.ToolCalls
        : value.ValueEquals("content_filter"u8) ? ChatFinishReason.ContentFilter
        : new ChatFinishReason(value.GetString()!);

    private static UsageDetails ToUsage(JsonElement usage) => new()
    {
        InputTokenCount = usage.GetProperty("prompt_tokens"u8).GetInt64(),
        OutputTokenCount = usage.GetProperty("completion_tokens"u8).GetInt64(),
        TotalTokenCount = usage.GetProperty("total_tokens"u8).GetInt64(),
        CachedInputTokenCount = usage.TryGetProperty("prompt_tokens_details"u8, out var details) && details.TryGetProperty("cached_tokens"u8, out var cached) ? cached.GetInt64() : null,
    };

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }

    /// <summary>For setup checks: the request body as text.</summary>
    internal static string Describe(ReadOnlySpan<byte> body) => Encoding.UTF8.GetString(body);
}
