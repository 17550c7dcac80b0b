using System.Text;
using System.Text.Json.Nodes;
using Marginal.Core.Errors;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Providers.Anthropic;

namespace Marginal.Gateway.Deferral;

/// <summary>
/// Anthropic's Message Batches API over HTTP (https://docs.anthropic.com/en/api/creating-message-batches, read
/// 2026-11-28; batch price 50% of the standard price): <c>POST /v1/messages/batches</c> with
/// <c>{"requests":[{"custom_id","params": Messages request}]}</c>, <c>GET /v1/messages/batches/{id}</c> until
/// <c>processing_status</c> is <c>ended</c>, then the JSONL at <c>results_url</c>, one
/// <c>{"custom_id","result":{"type":"succeeded","message"}|{"type":"errored","error"}|{"type":"canceled"|"expired"}}</c>
/// per request. Translated to and from OpenAI's shapes (<see cref="IBatchApi"/>): the chat request becomes Messages
/// params (system messages joined into <c>system</c>, text content, <c>max_tokens</c> defaulted as the live provider
/// does, <c>stop</c> → <c>stop_sequences</c>); a message becomes a <c>chat.completion</c> with usage in OpenAI's terms
/// (prompt tokens include cache reads and writes; cache reads are <c>cached_tokens</c>). Tools and images are not sent
/// through batches: such a request fails its job with a clear error.
/// </summary>
public sealed class AnthropicBatchApi : IBatchApi
{
    /// <summary>The API version header every request carries (the version the Messages API pins, 2023-06-01).</summary>
    public const string ApiVersion = "2023-06-01";

    /// <summary>The usage field of a translated answer that carries Anthropic's cache writes (5-minute price).</summary>
    public const string CacheWriteTokensField = "cache_creation_input_tokens";

    private readonly HttpClient _http;
    private readonly string _baseUrl;

    private AnthropicBatchApi(HttpClient http, string baseUrl)
    {
        _http = http;
        _baseUrl = baseUrl;
    }

    /// <summary>The batch API of the anthropic-kind provider <paramref name="name"/>, with its key, headers and timeout.</summary>
    public static AnthropicBatchApi Create(string name, ProviderConfig config, TimeProvider time)
    {
        var http = BatchHttp.Create(name, config, time);
        http.DefaultRequestHeaders.TryAddWithoutValidation("anthropic-version", ApiVersion);
        return new AnthropicBatchApi(http, AnthropicProvider.BaseUrlOf(config));
    }

    public async Task<string> SubmitAsync(string jsonl, CancellationToken cancellationToken)
    {
        var requests = new JsonArray();
        foreach (var text in jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var line = JsonNode.Parse(text)!;
            requests.Add(new JsonObject { ["custom_id"] = line["custom_id"]!.GetValue<string>(), ["params"] = ParamsOf(line["body"]!.AsObject()) });
        }
        var batch = await SendAsync(HttpMethod.Post, "/v1/messages/batches", new JsonObject { ["requests"] = requests }, cancellationToken);
        return batch["id"]!.GetValue<string>();
    }

    public async Task<JsonObject> GetAsync(string batchId, CancellationToken cancellationToken)
    {
        var batch = await SendAsync(HttpMethod.Get, $"/v1/messages/batches/{Uri.EscapeDataString(batchId)}", null, cancellationToken);
        var status = batch["processing_status"]?.GetValue<string>() switch
        {
            "ended" => "completed",
            "canceling" => "cancelling",
            _ => "in_progress",
        };
        return new JsonObject { ["id"] = batchId, ["status"] = status, ["results_url"] = batch["results_url"]?.DeepClone() };
    }

    public async Task<IReadOnlyList<JsonNode>> ReadResultsAsync(JsonObject batch, CancellationToken cancellationToken)
    {
        var lines = new List<JsonNode>();
        if (batch["results_url"]?.GetValue<string>() is not { Length: > 0 } url)
        {
            return lines;
        }
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(url));
        var content = await BatchHttp.ReadAsync(_http, request, cancellationToken);
        foreach (var text in content.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (JsonNode.Parse(text) is { } line && line["custom_id"]?.GetValue<string>() is { } customId && ResultLine(customId, line["result"]) is { } result)
            {
                lines.Add(result);
            }
        }
        return lines;
    }

    public async Task CancelAsync(string batchId, CancellationToken cancellationToken) =>
        await SendAsync(HttpMethod.Post, $"/v1/messages/batches/{Uri.EscapeDataString(batchId)}/cancel", null, cancellationToken);

    public void Check(JsonObject chatRequest) => ParamsOf(chatRequest);

    /// <summary>An OpenAI chat request as Messages params; throws <see cref="GatewayException"/> for what batches do not carry.</summary>
    public static JsonObject ParamsOf(JsonObject chat)
    {
        if (chat["tools"] is JsonArray { Count: > 0 })
        {
            throw GatewayException.InvalidRequest("Tools are not sent through Anthropic batches here; send the request without x-marginal-deadline.", "tools", "unsupported_parameter");
        }
        var system = new StringBuilder();
        var messages = new JsonArray();
        foreach (var message in chat["messages"]!.AsArray())
        {
            var role = message!["role"]!.GetValue<string>();
            var text = TextOf(message["content"]);
            if (role is "system" or "developer")
            {
                system.Append(system.Length > 0 ? "\n\n" : "").Append(text);
            }
            else if (role is "user" or "assistant")
            {
                messages.Add(new JsonObject { ["role"] = role, ["content"] = text });
            }
            else
            {
                throw GatewayException.InvalidRequest($"A '{role}' message is not sent through Anthropic batches here.", "messages", "unsupported_parameter");
            }
        }
        var parameters = new JsonObject
        {
            ["model"] = chat["model"]!.GetValue<string>(),
            ["max_tokens"] = (chat["max_completion_tokens"] ?? chat["max_tokens"])?.GetValue<int>() ?? AnthropicProvider.DefaultMaxOutputTokens,
            ["messages"] = messages,
        };
        if (system.Length > 0)
        {
            parameters["system"] = system.ToString();
        }
        foreach (var name in new[] { "temperature", "top_p" })
        {
            if (chat[name] is { } value)
            {
                parameters[name] = value.DeepClone();
            }
        }
        if (chat["stop"] is { } stop)
        {
            parameters["stop_sequences"] = stop is JsonArray array ? array.DeepClone() : new JsonArray(stop.GetValue<string>());
        }
        return parameters;
    }

    private static string TextOf(JsonNode? content) => content switch
    {
        null => "",
        JsonValue value => value.GetValue<string>(),
        JsonArray parts => string.Concat(parts.Select(part => part?["type"]?.GetValue<string>() == "text"
            ? part["text"]!.GetValue<string>()
            : throw GatewayException.InvalidRequest("Only text content is sent through Anthropic batches here.", "messages", "unsupported_parameter"))),
        _ => throw GatewayException.InvalidRequest("A message's content must be a string or an array of parts.", "messages", "invalid_value"),
    };

    /// <summary>An Anthropic result line as an OpenAI batch output line; null for canceled and expired lines (never processed).</summary>
    private static JsonObject? ResultLine(string customId, JsonNode? result)
    {
        switch (result?["type"]?.GetValue<string>())
        {
            case "succeeded" when result["message"] is JsonObject message:
                return new JsonObject
                {
                    ["custom_id"] = customId,
                    ["response"] = new JsonObject { ["status_code"] = 200, ["body"] = CompletionOf(message) },
                    ["error"] = null,
                };
            case "errored":
                var error = result["error"]?["error"] ?? result["error"];
                var type = error?["type"]?.GetValue<string>();
                return new JsonObject
                {
                    ["custom_id"] = customId,
                    ["response"] = new JsonObject
                    {
                        ["status_code"] = type is "invalid_request_error" or "not_found_error" ? 400 : 500,
                        ["body"] = new JsonObject { ["error"] = new JsonObject { ["message"] = error?["message"]?.GetValue<string>() ?? "The provider could not answer this request.", ["code"] = type } },
                    },
                    ["error"] = null,
                };
            default:
                return null;
        }
    }

    /// <summary>A Messages API answer as an OpenAI <c>chat.completion</c>.</summary>
    public static JsonObject CompletionOf(JsonObject message)
    {
        var text = new StringBuilder();
        foreach (var block in message["content"]?.AsArray() ?? [])
        {
            if (block?["type"]?.GetValue<string>() == "text")
            {
                text.Append(block["text"]!.GetValue<string>());
            }
        }
        var usage = message["usage"];
        var input = usage?["input_tokens"]?.GetValue<long>() ?? 0;
        var cacheRead = usage?["cache_read_input_tokens"]?.GetValue<long>() ?? 0;
        var cacheWrite = usage?["cache_creation_input_tokens"]?.GetValue<long>() ?? 0;
        var output = usage?["output_tokens"]?.GetValue<long>() ?? 0;
        var finish = message["stop_reason"]?.GetValue<string>() switch
        {
            "max_tokens" or "model_context_window_exceeded" => "length",
            "tool_use" => "tool_calls",
            "refusal" => "content_filter",
            _ => "stop",
        };
        return new JsonObject
        {
            ["id"] = message["id"]?.DeepClone(),
            ["object"] = "chat.completion",
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = message["model"]?.DeepClone(),
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text.ToString() },
                ["finish_reason"] = finish,
            }),
            ["usage"] = new JsonObject
            {
                // Anthropic's input_tokens exclude cache reads and writes; OpenAI's prompt_tokens include cached ones.
                ["prompt_tokens"] = input + cacheRead + cacheWrite,
                ["completion_tokens"] = output,
                ["total_tokens"] = input + cacheRead + cacheWrite + output,
                ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = cacheRead },
                [CacheWriteTokensField] = cacheWrite,
            },
        };
    }

    private async Task<JsonObject> SendAsync(HttpMethod method, string path, JsonObject? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(_baseUrl + path))
        {
            Content = body is null ? null : new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        return await BatchHttp.SendAsync(_http, request, cancellationToken);
    }

    public void Dispose() => _http.Dispose();
}
