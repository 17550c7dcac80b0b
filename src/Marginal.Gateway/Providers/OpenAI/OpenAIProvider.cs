using System.ClientModel;
using System.ClientModel.Primitives;
using System.Runtime.CompilerServices;
using Marginal.Core.Requests;
using Marginal.Gateway.Configuration;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Marginal.Gateway.Providers.OpenAI;

/// <summary>
/// Any OpenAI-compatible upstream (OpenAI, Azure OpenAI's /openai/v1, vLLM, Ollama, llama.cpp server, Together, Groq…)
/// through the official OpenAI SDK and Microsoft.Extensions.AI.OpenAI; plain text requests, streamed or not, are written
/// and read off the wire by <see cref="OpenAIChatStream"/>, which costs a third of the SDK's CPU for a stream
/// (docs/benchmarks.md, section 5).
/// </summary>
internal static class OpenAIProvider
{
    public const string DefaultBaseUrl = "https://api.openai.com/v1";

    public static UpstreamProvider Create(string name, ProviderConfig config, string? apiKey, HttpClient http, TimeProvider time)
    {
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(config.BaseUrl ?? DefaultBaseUrl),
            Transport = new HttpClientPipelineTransport(http),
            // Fallback across providers is the gateway's job; the SDK must not retry behind its back.
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = ProviderHttp.TimeoutOf(config),
        };
        // Local servers (vLLM, Ollama, llama.cpp) take no key; the SDK insists on one, so send a placeholder.
        var client = new OpenAIClient(new ApiKeyCredential(apiKey ?? "no-key"), options);
        // The model here is only a default: every call sets ChatOptions.ModelId to the upstream id.
        var stream = new OpenAIChatStream(http, options.Endpoint, apiKey, name, ProviderHttp.TimeoutOf(config), time);
        var chat = new OpenAIRequestShaper(client.GetChatClient("default").AsIChatClient(), stream);
        return new UpstreamProvider(name, "openai", chat, model => client.GetEmbeddingClient(model).AsIEmbeddingGenerator());
    }

    /// <summary>
    /// Carries the OpenAI fields that M.E.AI has no slot for (<c>user</c>, <c>metadata</c>), keeps the gateway's
    /// context out of the wire request, and reads cached prompt tokens that a compatible server reports its own way.
    /// </summary>
    private sealed class OpenAIRequestShaper(IChatClient inner, OpenAIChatStream stream) : DelegatingChatClient(inner)
    {
        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            if (OpenAIChatStream.CanWrite(messages, options))
            {
                return await stream.CompleteAsync(messages, options, cancellationToken).ConfigureAwait(false);
            }
            var response = await base.GetResponseAsync(messages, Shape(options), cancellationToken).ConfigureAwait(false);
            if (response.RawRepresentation is ChatCompletion { Usage: { } usage } && response.Usage is { } details)
            {
                ReadCompatibleCacheHits(usage, details);
            }
            return response;
        }

        public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) =>
            OpenAIChatStream.CanWrite(messages, options)
                ? stream.StreamAsync(messages, options, cancellationToken)
                : SdkStreamAsync(messages, options, cancellationToken);

        private async IAsyncEnumerable<ChatResponseUpdate> SdkStreamAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options,
            [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (var update in base.GetStreamingResponseAsync(messages, Shape(options), cancellationToken).ConfigureAwait(false))
            {
                if (update.RawRepresentation is StreamingChatCompletionUpdate { Usage: { } usage })
                {
                    foreach (var content in update.Contents)
                    {
                        if (content is UsageContent { Details: { } details })
                        {
                            ReadCompatibleCacheHits(usage, details);
                        }
                    }
                }
                yield return update;
            }
        }

        // DeepSeek reports prompt-cache reads as usage.prompt_cache_hit_tokens (with prompt_cache_miss_tokens) rather
        // than OpenAI's prompt_tokens_details.cached_tokens (DeepSeek API docs, "Context Caching"). prompt_tokens
        // already counts both, as OpenAI's does, so only the cached share needs reading. When a server reports both
        // ways, OpenAI's field wins.
        private static void ReadCompatibleCacheHits(ChatTokenUsage usage, UsageDetails details)
        {
#pragma warning disable SCME0001 // JsonPatch reads fields the SDK's model lacks; it is marked experimental.
            if (details.CachedInputTokenCount is null or 0 && usage.Patch.TryGetValue("$.prompt_cache_hit_tokens"u8, out long hits) && hits > 0)
            {
                details.CachedInputTokenCount = hits;
            }
#pragma warning restore SCME0001
        }

        private static ChatOptions? Shape(ChatOptions? options)
        {
            var context = options.GetGatewayContext();
            if (options is null || context is null)
            {
                return options;
            }
            var shaped = options.Clone();
            shaped.AdditionalProperties = null;
            if (context.EndUser is not null || context.Metadata is not null)
            {
                shaped.RawRepresentationFactory = _ =>
                {
                    var raw = new ChatCompletionOptions { EndUserId = context.EndUser };
                    if (context.Metadata is { } metadata)
                    {
                        foreach (var (key, value) in metadata)
                        {
                            raw.Metadata[key] = value;
                        }
                    }
                    return raw;
                };
            }
            return shaped;
        }
    }
}
