using System.Text;
using System.Text.Json;
using Marginal.Gateway.Providers.OpenAI;
using Microsoft.Extensions.AI;

namespace Marginal.Benchmarks;

/// <summary>
/// The yardstick for the OpenAI SDK adapter: the least an OpenAI-compatible <see cref="IChatClient"/> has to do
/// over <see cref="HttpClient"/> — write the request with <see cref="Utf8JsonWriter"/>, read the answer with
/// <see cref="JsonDocument"/> (the body is the served stream reader's writer, without <c>stream</c>). It handles text
/// messages and the common options only; it exists to measure what the SDK's generality costs for non-streamed calls.
/// </summary>
public sealed class LeanOpenAIChatClient(HttpClient http, Uri endpoint) : IChatClient
{
    private readonly Uri _completions = new(endpoint.AbsoluteUri.TrimEnd('/') + "/chat/completions");

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var request = CreateRequest(messages, options);
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

    /// <summary>Streams are read by the served <see cref="OpenAIChatStream"/>; this sketch only measures non-streamed calls.</summary>
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("Streams: see OpenAIChatStream.");

    private HttpRequestMessage CreateRequest(IEnumerable<ChatMessage> messages, ChatOptions? options) =>
        new(HttpMethod.Post, _completions) { Content = OpenAIChatStream.Body(messages, options, stream: false) };

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
