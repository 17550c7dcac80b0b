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
/// through the official OpenAI SDK and Microsoft.Extensions.AI.OpenAI.
/// </summary>
internal static class OpenAIProvider
{
    public const string DefaultBaseUrl = "https://api.openai.com/v1";

    public static UpstreamProvider Create(string name, ProviderConfig config, string? apiKey, HttpClient http)
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
        var chat = new OpenAIRequestShaper(client.GetChatClient("default").AsIChatClient());
        return new UpstreamProvider(name, "openai", chat, model => client.GetEmbeddingClient(model).AsIEmbeddingGenerator());
    }

    /// <summary>Carries the OpenAI fields that M.E.AI has no slot for (<c>user</c>, <c>metadata</c>) and keeps the gateway's context out of the wire request.</summary>
    private sealed class OpenAIRequestShaper(IChatClient inner) : DelegatingChatClient(inner)
    {
        public override Task<ChatResponse> GetResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            base.GetResponseAsync(messages, Shape(options), cancellationToken);

        public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            base.GetStreamingResponseAsync(messages, Shape(options), cancellationToken);

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
