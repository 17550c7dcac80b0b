using System.Runtime.CompilerServices;
using Anthropic;
using Anthropic.Core;
using Anthropic.Exceptions;
using Anthropic.Models.Messages;
using Marginal.Core.Requests;
using Marginal.Gateway.Configuration;
using Microsoft.Extensions.AI;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Marginal.Gateway.Providers.Anthropic;

/// <summary>
/// Anthropic's Messages API through the official Anthropic SDK and its Microsoft.Extensions.AI adapter.
/// The adapter does the message, tool, usage and SSE mapping; <see cref="AnthropicRequestShaper"/> adds what the
/// gateway needs on top: finish reasons OpenAI clients know, one per stream, the cache-write count under the
/// gateway's key, the end-user id, and the Retry-After that the SDK's exceptions do not keep.
/// </summary>
internal static class AnthropicProvider
{
    public const string DefaultBaseUrl = "https://api.anthropic.com";

    /// <summary>
    /// Key in <see cref="UsageDetails.AdditionalCounts"/> for the input tokens Anthropic wrote to its prompt cache
    /// (<c>usage.cache_creation_input_tokens</c>). They are part of <see cref="UsageDetails.InputTokenCount"/> and are
    /// billed at the cache-write price, not the input price. Absent when the request wrote nothing to the cache.
    /// </summary>
    public const string CacheCreationInputTokensKey = "cache_creation_input_tokens";

    /// <summary>The key the SDK's adapter files cache writes under (the name of its <c>Usage</c> property).</summary>
    private const string SdkCacheCreationKey = "CacheCreationInputTokens";

    /// <summary>
    /// <c>max_tokens</c> sent when the client set none. Anthropic requires the field while OpenAI clients usually omit
    /// it, meaning "as long as the model likes". 4096 is the output limit of Claude 3 Haiku, the lowest among the models
    /// in Anthropic's "Models overview" (2025), so no model rejects it, and it is well above the SDK's own default of
    /// 1024, which would cut ordinary answers short and report them as <c>length</c>.
    /// </summary>
    public const int DefaultMaxOutputTokens = 4096;

    public static UpstreamProvider Create(string name, ProviderConfig config, string? apiKey, HttpClient http)
    {
        var options = new ClientOptions
        {
            BaseUrl = BaseUrlOf(config),
            // Set explicitly, even when null: left unset, the SDK reads ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN or a
            // credentials profile of the host, none of which the gateway's config asked for. The SDK sends the key as
            // Authorization: Bearer; `api_key_header: x-api-key` in the config moves it to x-api-key.
            ApiKey = apiKey,
            AuthToken = null,
            HttpClient = http,
            Handlers = [new FailureHeadersHandler(), new SamplingFieldsHandler()],
            // Fallback across providers is the gateway's job; the SDK must not retry behind its back.
            MaxRetries = 0,
            // The HttpClient already limits the time to the response headers. Setting the SDK's limit too keeps it from
            // deriving one from max_tokens, which refuses non-streamed requests with a large max_tokens outright.
            Timeout = ProviderHttp.TimeoutOf(config),
        };
        return new UpstreamProvider(name, "anthropic", new AnthropicRequestShaper(new AnthropicClient(options)), embeddings: null);
    }

    /// <summary>
    /// The SDK appends <c>/v1/messages</c> itself, so the base URL ends before the version. A <c>/v1</c> at the end is
    /// dropped: the config documents base URLs with their version segment, as OpenAI-compatible ones are written.
    /// </summary>
    internal static string BaseUrlOf(ProviderConfig config)
    {
        var url = (config.BaseUrl ?? DefaultBaseUrl).TrimEnd('/');
        return url.EndsWith("/v1", StringComparison.OrdinalIgnoreCase) ? url[..^"/v1".Length] : url;
    }

    /// <summary>
    /// The finish reasons OpenAI clients know. The SDK maps end_turn and stop_sequence to stop, max_tokens and
    /// model_context_window_exceeded to length, tool_use to tool_calls and refusal to content_filter, but passes any
    /// other stop_reason (pause_turn, or one added later) through as is, which strict OpenAI clients refuse to parse.
    /// The model stopped on its own in those cases, so they become stop.
    /// </summary>
    internal static ChatFinishReason? FinishReasonOf(ChatFinishReason? reason) =>
        reason is null || reason == ChatFinishReason.Stop || reason == ChatFinishReason.Length
            || reason == ChatFinishReason.ToolCalls || reason == ChatFinishReason.ContentFilter
            ? reason
            : ChatFinishReason.Stop;

    /// <summary>
    /// Puts the SDK's usage in the gateway's terms. The SDK already counts input as
    /// <c>input_tokens + cache_read_input_tokens + cache_creation_input_tokens</c> (Anthropic's <c>input_tokens</c>
    /// excludes both caches; Anthropic, "Prompt caching"), matching OpenAI's <c>prompt_tokens</c>, and reports the cache
    /// reads as <see cref="UsageDetails.CachedInputTokenCount"/>; only the cache writes need the gateway's key.
    /// </summary>
    /// <param name="usage">The SDK's usage, changed in place.</param>
    /// <param name="oneHourWrites">Anthropic's <c>usage.cache_creation.ephemeral_1h_input_tokens</c>, when the answer
    /// reported it: the part of the cache writes made with the 1-hour lifetime, priced at the 1-hour write price.</param>
    internal static UsageDetails? UsageOf(UsageDetails? usage, long oneHourWrites = 0)
    {
        if (usage?.AdditionalCounts is { } counts && counts.TryGetValue(SdkCacheCreationKey, out var written))
        {
            counts.Remove(SdkCacheCreationKey);
            counts[CacheCreationInputTokensKey] = written;
            if (oneHourWrites > 0)
            {
                counts[Core.Pricing.TokenUsage.CacheWrite1hTokensKey] = Math.Min(oneHourWrites, written);
            }
        }
        return usage;
    }

    /// <summary>
    /// <c>usage.cache_creation.ephemeral_1h_input_tokens</c> of a message, read from the raw JSON (the SDK's typed
    /// accessor throws when an older API version leaves <c>cache_creation</c> out); 0 when absent.
    /// </summary>
    internal static long OneHourWritesOf(Usage? usage) =>
        usage?.RawData is { } raw
        && raw.TryGetValue("cache_creation", out var creation)
        && creation.ValueKind == System.Text.Json.JsonValueKind.Object
        && creation.TryGetProperty("ephemeral_1h_input_tokens", out var hour)
        && hour.TryGetInt64(out var tokens)
            ? tokens
            : 0;

    /// <summary>
    /// Sits in front of the SDK's chat client: keeps the gateway's context out of the wire request, forwards the
    /// client's end-user id as <c>metadata.user_id</c>, and puts finish reasons and usage in the gateway's terms.
    /// Owns the <see cref="AnthropicClient"/> (and through it the HttpClient) and disposes it.
    /// </summary>
    private sealed class AnthropicRequestShaper(AnthropicClient client)
        : DelegatingChatClient(client.AsIChatClient(defaultModelId: null, DefaultMaxOutputTokens))
    {
        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var failure = FailureHeadersHandler.BeginRequest();
            SamplingFieldsHandler.BeginRequest(options);
            ChatResponse response;
            try
            {
                response = await base.GetResponseAsync(messages, Shape(options), cancellationToken);
            }
            catch (AnthropicApiException error)
            {
                failure.AttachTo(error);
                throw;
            }
            response.FinishReason = FinishReasonOf(response.FinishReason);
            response.Usage = UsageOf(response.Usage, OneHourWritesOf((response.RawRepresentation as Message)?.Usage));
            return response;
        }

        public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            var failure = FailureHeadersHandler.BeginRequest();
            SamplingFieldsHandler.BeginRequest(options);
            var finished = false;
            // The 1-hour share of cache writes comes in message_start; the usage the adapter reports comes later.
            long oneHourWrites = 0;
            await using var updates = base.GetStreamingResponseAsync(messages, Shape(options), cancellationToken).GetAsyncEnumerator(cancellationToken);
            while (true)
            {
                try
                {
                    if (!await updates.MoveNextAsync())
                    {
                        break;
                    }
                }
                catch (AnthropicApiException error)
                {
                    failure.AttachTo(error);
                    throw;
                }
                var update = updates.Current;
                if (update.RawRepresentation is RawMessageStreamEvent raw && raw.TryPickStart(out var start))
                {
                    oneHourWrites = OneHourWritesOf(start.Message.Usage);
                }
                if (update.FinishReason is not null)
                {
                    // The SDK repeats the finish reason on every update after message_delta; OpenAI sends it once.
                    update.FinishReason = finished ? null : FinishReasonOf(update.FinishReason);
                    finished = true;
                }
                foreach (var content in update.Contents)
                {
                    if (content is UsageContent usage)
                    {
                        UsageOf(usage.Details, oneHourWrites);
                    }
                }
                yield return update;
            }
        }

        private static ChatOptions? Shape(ChatOptions? options)
        {
            OpenAIOnlyFields.RejectOn(options, "anthropic");
            var context = options.GetGatewayContext();
            if (options is null || context is null)
            {
                return options;
            }
            var shaped = options.Clone();
            AdditionalPropertiesDictionary? rest = null;
            foreach (var (key, value) in options.AdditionalProperties!)
            {
                if (key is not (GatewayContext.PropertyKey or OpenAIOnlyFields.Strict))
                {
                    (rest ??= [])[key] = value;
                }
            }
            shaped.AdditionalProperties = rest;
            // Anthropic's metadata holds only user_id; the client's other metadata has no place on this API.
            if (context.EndUser is { } endUser)
            {
                var inner = options.RawRepresentationFactory;
                var model = options.ModelId;
                var maxTokens = options.MaxOutputTokens ?? DefaultMaxOutputTokens;
                shaped.RawRepresentationFactory = chat =>
                {
                    // Given a raw MessageCreateParams, the SDK takes model and max_tokens from it and ignores
                    // ChatOptions.ModelId and MaxOutputTokens, so both are set here.
                    var raw = inner?.Invoke(chat) as MessageCreateParams
                        ?? new MessageCreateParams { Model = model!, MaxTokens = maxTokens, Messages = [] };
                    return raw with { Metadata = new Metadata { UserID = endUser } };
                };
            }
            return shaped;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                client.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>
    /// Keeps the Retry-After headers of a failed response for the request in flight. The SDK's exceptions carry the
    /// status and body but drop the headers, so the shaper copies them into <see cref="Exception.Data"/> under
    /// <see cref="ProviderErrors.RetryAfterMsDataKey"/> and <see cref="ProviderErrors.RetryAfterDataKey"/>.
    /// The slot travels in an <see cref="AsyncLocal{T}"/>: set by the caller, filled in by this handler further down
    /// the same async flow, so concurrent requests never see each other's headers.
    /// </summary>
    private sealed class FailureHeadersHandler : DelegatingHandler
    {
        private static readonly AsyncLocal<FailureHeaders?> Current = new();

        public static FailureHeaders BeginRequest() => Current.Value = new FailureHeaders();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode && Current.Value is { } slot)
            {
                slot.RetryAfterMs = Header(response, "retry-after-ms");
                slot.RetryAfter = Header(response, "retry-after");
            }
            return response;
        }

        private static string? Header(HttpResponseMessage response, string name) =>
            response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
    }

    /// <summary>
    /// Adds <c>temperature</c> and <c>top_p</c> to the Messages request body. The Messages API takes both, but the SDK's
    /// request type (13.14) has no field for them, so without this a live call sampled at Anthropic's defaults while the
    /// same request sent in a Message Batch (whose params are this very body, captured) did not. Only a request that set
    /// one of them has its body rewritten.
    /// </summary>
    private sealed class SamplingFieldsHandler : DelegatingHandler
    {
        private static readonly AsyncLocal<(float? Temperature, float? TopP)> Current = new();

        public static void BeginRequest(ChatOptions? options) => Current.Value = (options?.Temperature, options?.TopP);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var (temperature, topP) = Current.Value;
            if ((temperature is not null || topP is not null) && request.Content is { } content
                && request.RequestUri?.AbsolutePath.EndsWith("/v1/messages", StringComparison.Ordinal) == true)
            {
                var body = System.Text.Json.Nodes.JsonNode.Parse(await content.ReadAsStringAsync(cancellationToken))!.AsObject();
                // A float as the client wrote it (0.2, not 0.200000003): through decimal's shortest round-trip form.
                if (temperature is { } t)
                {
                    body["temperature"] = (decimal)t;
                }
                if (topP is { } p)
                {
                    body["top_p"] = (decimal)p;
                }
                request.Content = new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json");
            }
            return await base.SendAsync(request, cancellationToken);
        }
    }

    private sealed class FailureHeaders
    {
        public string? RetryAfterMs { get; set; }
        public string? RetryAfter { get; set; }

        public void AttachTo(Exception error)
        {
            if (RetryAfterMs is not null)
            {
                error.Data[ProviderErrors.RetryAfterMsDataKey] = RetryAfterMs;
            }
            if (RetryAfter is not null)
            {
                error.Data[ProviderErrors.RetryAfterDataKey] = RetryAfter;
            }
        }
    }
}
