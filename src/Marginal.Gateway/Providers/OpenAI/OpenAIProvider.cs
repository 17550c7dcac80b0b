using System.ClientModel;
using System.ClientModel.Primitives;
using System.Runtime.CompilerServices;
using System.Text.Json;
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
            if (response.RawRepresentation is ChatCompletion completion)
            {
                if (completion.Usage is { } usage && response.Usage is { } details)
                {
                    ReadCompatibleCacheHits(usage, details);
                }
                if (Logprobs(completion.ContentTokenLogProbabilities, completion.RefusalTokenLogProbabilities) is { } logprobs)
                {
                    (response.AdditionalProperties ??= [])[OpenAIOnlyFields.ResponseLogprobs] = logprobs;
                }
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
                if (update.RawRepresentation is StreamingChatCompletionUpdate raw)
                {
                    if (raw.Usage is { } usage)
                    {
                        foreach (var content in update.Contents)
                        {
                            if (content is UsageContent { Details: { } details })
                            {
                                ReadCompatibleCacheHits(usage, details);
                            }
                        }
                    }
                    if (Logprobs(raw.ContentTokenLogProbabilities, raw.RefusalTokenLogProbabilities) is { } logprobs)
                    {
                        (update.AdditionalProperties ??= [])[OpenAIOnlyFields.ResponseLogprobs] = logprobs;
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

        /// <summary>
        /// The request as the client sent it, where M.E.AI's own mapping would change it: tools with their schema as
        /// sent and their <c>strict</c> flag (M.E.AI re-serialises every schema, adding <c>required</c> and
        /// <c>"additionalProperties": false</c>, and applies its strict transform to every JSON schema format), the
        /// schema format's <c>strict</c>, <c>user</c>, <c>metadata</c>, <c>logprobs</c>, <c>top_logprobs</c> and
        /// <c>logit_bias</c>.
        /// </summary>
        private static ChatOptions? Shape(ChatOptions? options)
        {
            var context = options.GetGatewayContext();
            if (options is null || context is null)
            {
                return options;
            }
            var extra = options.AdditionalProperties!;
            var shaped = options.Clone();
            shaped.AdditionalProperties = null;
            var tools = options.Tools is { Count: > 0 } list && list.All(t => t is AIFunctionDeclaration) ? list : null;
            if (tools is not null)
            {
                // Declared on the raw options below; left here, M.E.AI would add each tool a second time.
                shaped.Tools = null;
            }
            var schemaFormat = options.ResponseFormat as ChatResponseFormatJson;
            if (context.EndUser is null && context.Metadata is null && tools is null && schemaFormat?.Schema is null
                && !extra.ContainsKey(OpenAIOnlyFields.Logprobs) && !extra.ContainsKey(OpenAIOnlyFields.TopLogprobs) && !extra.ContainsKey(OpenAIOnlyFields.LogitBias))
            {
                return shaped;
            }
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
                if (tools is not null)
                {
                    AddTools(raw, tools, options);
                }
                if (schemaFormat is { Schema: { } schema })
                {
                    raw.ResponseFormat = global::OpenAI.Chat.ChatResponseFormat.CreateJsonSchemaFormat(schemaFormat.SchemaName ?? "response",
                        BinaryData.FromString(schema.GetRawText()), schemaFormat.SchemaDescription, extra.TryGetValue(OpenAIOnlyFields.Strict, out var strict) ? strict as bool? : null);
                }
                if (extra.TryGetValue(OpenAIOnlyFields.Logprobs, out var logprobs) && logprobs is true)
                {
                    raw.IncludeLogProbabilities = true;
                }
                if (extra.TryGetValue(OpenAIOnlyFields.TopLogprobs, out var top) && top is int count)
                {
                    raw.TopLogProbabilityCount = count;
                }
                if (extra.TryGetValue(OpenAIOnlyFields.LogitBias, out var bias) && bias is string canonical)
                {
                    foreach (var (token, value) in OpenAIOnlyFields.ParseLogitBias(canonical))
                    {
                        raw.LogitBiases[token] = value;
                    }
                }
                return raw;
            };
            return shaped;
        }

        private static void AddTools(ChatCompletionOptions raw, IList<AITool> tools, ChatOptions options)
        {
            foreach (AIFunctionDeclaration function in tools)
            {
                raw.Tools.Add(ChatTool.CreateFunctionTool(function.Name, function.Description is { Length: > 0 } description ? description : null,
                    BinaryData.FromString(function.JsonSchema.GetRawText()),
                    function.AdditionalProperties.TryGetValue(OpenAIOnlyFields.Strict, out var strict) ? strict as bool? : null));
            }
            raw.AllowParallelToolCalls = options.AllowMultipleToolCalls;
            raw.ToolChoice = options.ToolMode switch
            {
                NoneChatToolMode => ChatToolChoice.CreateNoneChoice(),
                AutoChatToolMode => ChatToolChoice.CreateAutoChoice(),
                RequiredChatToolMode { RequiredFunctionName: { } name } => ChatToolChoice.CreateFunctionChoice(name),
                RequiredChatToolMode => ChatToolChoice.CreateRequiredChoice(),
                // Not sent by the client: not sent upstream either (the upstream's default applies, as it would directly).
                _ => null,
            };
        }

        /// <summary>The choice's <c>logprobs</c> object in OpenAI's JSON, or null when the upstream sent none.</summary>
        private static JsonElement? Logprobs(IReadOnlyList<ChatTokenLogProbabilityDetails> content, IReadOnlyList<ChatTokenLogProbabilityDetails> refusal)
        {
            if (content.Count == 0 && refusal.Count == 0)
            {
                return null;
            }
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                WriteTokens(json, "content", content);
                WriteTokens(json, "refusal", refusal);
                json.WriteEndObject();
            }
            return JsonElement.Parse(buffer.WrittenSpan);
        }

        private static void WriteTokens(Utf8JsonWriter json, string name, IReadOnlyList<ChatTokenLogProbabilityDetails> tokens)
        {
            if (tokens.Count == 0)
            {
                json.WriteNull(name);
                return;
            }
            json.WriteStartArray(name);
            foreach (var token in tokens)
            {
                json.WriteStartObject();
                WriteToken(json, token.Token, token.LogProbability, token.Utf8Bytes);
                json.WriteStartArray("top_logprobs");
                foreach (var top in token.TopLogProbabilities)
                {
                    json.WriteStartObject();
                    WriteToken(json, top.Token, top.LogProbability, top.Utf8Bytes);
                    json.WriteEndObject();
                }
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }

        private static void WriteToken(Utf8JsonWriter json, string token, float logprob, ReadOnlyMemory<byte>? bytes)
        {
            json.WriteString("token", token);
            json.WriteNumber("logprob", logprob);
            if (bytes is { } utf8)
            {
                json.WriteStartArray("bytes");
                foreach (var b in utf8.Span)
                {
                    json.WriteNumberValue(b);
                }
                json.WriteEndArray();
            }
            else
            {
                json.WriteNull("bytes");
            }
        }
    }
}
