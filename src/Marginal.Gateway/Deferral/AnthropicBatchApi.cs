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
/// per request. Translated to and from OpenAI's shapes (<see cref="IBatchApi"/>): the chat request becomes exactly the
/// Messages params the live Anthropic provider would send (<see cref="AnthropicRequestCapture"/>: system prompt, tools
/// and tool choice, tool calls and results, images as base64 or URL sources, stop sequences, <c>max_tokens</c>
/// defaulted as the live provider does, the end user as <c>metadata.user_id</c>, <c>temperature</c> and <c>top_p</c>);
/// a message becomes a
/// <c>chat.completion</c> with its text, its <c>tool_use</c> blocks as <c>tool_calls</c>, and usage in OpenAI's terms
/// (prompt tokens include cache reads and writes; cache reads are <c>cached_tokens</c>).
/// </summary>
public sealed class AnthropicBatchApi : IBatchApi
{
    /// <summary>The API version header every request carries (the version the Messages API pins, 2023-06-01).</summary>
    public const string ApiVersion = "2023-06-01";

    /// <summary>The usage field of a translated answer that carries Anthropic's cache writes (5-minute price).</summary>
    public const string CacheWriteTokensField = "cache_creation_input_tokens";

    private readonly HttpClient _http;
    private readonly string _baseUrl;
    private readonly ChatRequestTranslator _readChat;
    private readonly AnthropicRequestCapture _capture;

    private AnthropicBatchApi(HttpClient http, string baseUrl, ChatRequestTranslator readChat, AnthropicRequestCapture capture)
    {
        _http = http;
        _baseUrl = baseUrl;
        _readChat = readChat;
        _capture = capture;
    }

    /// <summary>
    /// The batch API of the anthropic-kind provider <paramref name="name"/>, with its key, headers and timeout;
    /// <paramref name="readChat"/> reads a stored chat request as the server reads a live one.
    /// </summary>
    public static AnthropicBatchApi Create(string name, ProviderConfig config, TimeProvider time, ChatRequestTranslator readChat)
    {
        var http = BatchHttp.Create(name, config, time);
        http.DefaultRequestHeaders.TryAddWithoutValidation("anthropic-version", ApiVersion);
        return new AnthropicBatchApi(http, AnthropicProvider.BaseUrlOf(config), readChat, new AnthropicRequestCapture(name, config));
    }

    public async Task<string> SubmitAsync(string jsonl, CancellationToken cancellationToken)
    {
        var requests = new JsonArray();
        foreach (var text in jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var line = JsonNode.Parse(text)!;
            requests.Add(new JsonObject { ["custom_id"] = line["custom_id"]!.GetValue<string>(), ["params"] = line["body"]!.DeepClone() });
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

    /// <summary>The chat request as the Messages params the live provider would send for it.</summary>
    public async Task<JsonObject> PrepareAsync(JsonObject chatRequest, CancellationToken cancellationToken)
    {
        var (messages, options) = _readChat(chatRequest);
        JsonObject parameters;
        try
        {
            parameters = await _capture.ParamsAsync(messages, options, cancellationToken);
        }
        catch (Exception error) when (error is not (GatewayException or OperationCanceledException))
        {
            // The SDK's adapter refuses content it cannot express (e.g. an audio part): this job fails, the batch goes on.
            throw GatewayException.InvalidRequest($"This request cannot be sent to Anthropic: {error.Message}", "messages", "unsupported_parameter");
        }
        parameters.Remove("stream");
        return parameters;
    }

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
        var toolCalls = new JsonArray();
        foreach (var block in message["content"]?.AsArray() ?? [])
        {
            switch (block?["type"]?.GetValue<string>())
            {
                case "text":
                    text.Append(block["text"]!.GetValue<string>());
                    break;
                case "tool_use":
                    // OpenAI's arguments are the JSON text of Anthropic's input object.
                    toolCalls.Add(new JsonObject
                    {
                        ["id"] = block["id"]?.DeepClone(),
                        ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = block["name"]?.DeepClone(), ["arguments"] = block["input"]?.ToJsonString() ?? "{}" },
                    });
                    break;
            }
        }
        var reply = new JsonObject { ["role"] = "assistant", ["content"] = text.Length > 0 || toolCalls.Count == 0 ? text.ToString() : null };
        if (toolCalls.Count > 0)
        {
            reply["tool_calls"] = toolCalls;
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
                ["message"] = reply,
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

    public void Dispose()
    {
        _http.Dispose();
        _capture.Dispose();
    }
}
