using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Marginal.Testing;

/// <summary>
/// Anthropic's Message Batches API (https://docs.anthropic.com/en/api/creating-message-batches, read 2026-11-28):
/// <c>POST /v1/messages/batches</c> <c>{"requests":[{"custom_id","params"}]}</c>, <c>GET /v1/messages/batches/{id}</c>,
/// <c>POST /v1/messages/batches/{id}/cancel</c>, and the <c>results_url</c> JSONL
/// (<c>{"custom_id","result":{"type":"succeeded","message"}|{"type":"errored","error"}|{"type":"canceled"}}</c>).
/// A batch is <c>in_progress</c> when created and <c>ended</c> at the next poll (unless <see cref="HoldBatches"/>);
/// a cancelled one is <c>canceling</c> and then ends with its lines canceled. Lines whose last user message contains
/// <see cref="FailBatchLinesContaining"/> are errored, and so are lines whose params the real API would reject
/// (malformed image, tool_use or tool_result blocks, tools without a schema). Answers are those of <c>POST /v1/messages</c>.
/// </summary>
public sealed partial class FakeUpstream
{
    /// <summary>Every Message Batch created, by id: its current batch object.</summary>
    public ConcurrentDictionary<string, JsonObject> MessageBatches { get; } = new();

    private readonly ConcurrentDictionary<string, (JsonArray Requests, StringBuilder Results)> _messageBatchData = new();

    private void MapMessageBatchApi(WebApplication app)
    {
        app.MapPost("/v1/messages/batches", (Delegate)CreateMessageBatchAsync);
        app.MapGet("/v1/messages/batches/{id}", (HttpContext http, string id) => AnthropicHeadersMissing(http)
            ?? (MessageBatches.TryGetValue(id, out var batch) ? Results.Text(AdvanceMessageBatch(id, batch).ToJsonString(), "application/json") : AnthropicNotFound(id)));
        app.MapGet("/v1/messages/batches/{id}/results", (HttpContext http, string id) => AnthropicHeadersMissing(http)
            ?? (_messageBatchData.TryGetValue(id, out var data) && MessageBatches[id]["processing_status"]!.GetValue<string>() == "ended"
                ? Results.Text(data.Results.ToString(), "application/binary")
                : AnthropicNotFound(id)));
        app.MapPost("/v1/messages/batches/{id}/cancel", (HttpContext http, string id) =>
        {
            if (AnthropicHeadersMissing(http) is { } missing)
            {
                return missing;
            }
            if (!MessageBatches.TryGetValue(id, out var batch))
            {
                return AnthropicNotFound(id);
            }
            lock (batch)
            {
                if (batch["processing_status"]!.GetValue<string>() == "in_progress")
                {
                    batch["processing_status"] = "canceling";
                    batch["cancel_initiated_at"] = IsoNow();
                }
                return Results.Text(batch.ToJsonString(), "application/json");
            }
        });
    }

    private static IResult? AnthropicHeadersMissing(HttpContext http) =>
        !http.Request.Headers.ContainsKey("x-api-key") && !http.Request.Headers.ContainsKey("authorization") ? AnthropicError(401, "authentication_error", "x-api-key header is required")
        : !http.Request.Headers.ContainsKey("anthropic-version") ? AnthropicError(400, "invalid_request_error", "anthropic-version: header is required")
        : null;

    private static IResult AnthropicNotFound(string id) => AnthropicError(404, "not_found_error", $"No message batch with id '{id}'.");

    private static IResult AnthropicError(int status, string type, string message) => Results.Json(
        new JsonObject { ["type"] = "error", ["error"] = new JsonObject { ["type"] = type, ["message"] = message } }, statusCode: status);

    private static string IsoNow() => DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);

    private async Task<IResult> CreateMessageBatchAsync(HttpContext http)
    {
        using var reader = new StreamReader(http.Request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync();
        RecordedRequestOf(http, text);
        if (AnthropicHeadersMissing(http) is { } missing)
        {
            return missing;
        }
        var body = JsonNode.Parse(text);
        if (body?["requests"] is not JsonArray { Count: > 0 } requests)
        {
            return AnthropicError(400, "invalid_request_error", "requests: Field required");
        }
        foreach (var request in requests)
        {
            if (request?["custom_id"] is null || request["params"]?["max_tokens"] is null || request["params"]?["messages"] is null)
            {
                return AnthropicError(400, "invalid_request_error", "requests: each needs custom_id and params with model, max_tokens and messages");
            }
        }
        var id = "msgbatch_fake" + Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture);
        var batch = new JsonObject
        {
            ["id"] = id, ["type"] = "message_batch", ["processing_status"] = "in_progress",
            ["request_counts"] = new JsonObject { ["processing"] = requests.Count, ["succeeded"] = 0, ["errored"] = 0, ["canceled"] = 0, ["expired"] = 0 },
            ["ended_at"] = null, ["created_at"] = IsoNow(), ["expires_at"] = DateTimeOffset.UtcNow.AddDays(1).ToString("O", CultureInfo.InvariantCulture),
            ["cancel_initiated_at"] = null, ["results_url"] = null,
        };
        _messageBatchData[id] = (requests, new StringBuilder());
        MessageBatches[id] = batch;
        return Results.Json(batch);
    }

    private JsonObject AdvanceMessageBatch(string id, JsonObject batch)
    {
        lock (batch)
        {
            var status = batch["processing_status"]!.GetValue<string>();
            if (status == "canceling" || (status == "in_progress" && !HoldBatches))
            {
                EndMessageBatch(id, batch, canceled: status == "canceling");
            }
            return (JsonObject)batch.DeepClone();
        }
    }

    private void EndMessageBatch(string id, JsonObject batch, bool canceled)
    {
        var (requests, results) = _messageBatchData[id];
        int succeeded = 0, errored = 0;
        foreach (var request in requests)
        {
            var parameters = request!["params"]!;
            var messages = parameters["messages"]!.AsArray();
            JsonObject result;
            if (canceled)
            {
                result = new JsonObject { ["type"] = "canceled" };
            }
            else if ((ContentText(messages[^1]?["content"]).Contains(FailBatchLinesContaining, StringComparison.Ordinal)
                ? "This request was rejected on purpose." : ParamsProblem(parameters)) is { } problem)
            {
                errored++;
                result = new JsonObject
                {
                    ["type"] = "errored",
                    ["error"] = new JsonObject { ["type"] = "error", ["error"] = new JsonObject { ["type"] = "invalid_request_error", ["message"] = problem } },
                };
            }
            else
            {
                succeeded++;
                var model = parameters["model"]?.GetValue<string>() ?? "unknown";
                var message = AnthropicMessage(model, "msg_fake" + Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture), PlanAnthropic(parameters));
                result = new JsonObject { ["type"] = "succeeded", ["message"] = message };
            }
            results.Append(new JsonObject { ["custom_id"] = request["custom_id"]!.GetValue<string>(), ["result"] = result }.ToJsonString()).Append('\n');
        }
        batch["processing_status"] = "ended";
        batch["ended_at"] = IsoNow();
        batch["request_counts"] = new JsonObject
        {
            ["processing"] = 0, ["succeeded"] = succeeded, ["errored"] = errored, ["canceled"] = canceled ? requests.Count : 0, ["expired"] = 0,
        };
        batch["results_url"] = $"{AnthropicBaseUrl.ToString().TrimEnd('/')}/v1/messages/batches/{id}/results";
    }

    /// <summary>
    /// What the real API would reject in a line's params (checked when the batch runs, as Anthropic validates each line
    /// then): an image block without a base64 (<c>media_type</c>, <c>data</c>) or URL source, a <c>tool_use</c> block without
    /// id, name and input object, a <c>tool_result</c> whose id no earlier <c>tool_use</c> has, a tool without
    /// <c>input_schema</c>. Null when the params pass.
    /// </summary>
    private static string? ParamsProblem(JsonNode parameters)
    {
        var toolUseIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var message in parameters["messages"]!.AsArray())
        {
            if (message?["content"] is not JsonArray blocks)
            {
                continue;
            }
            foreach (var block in blocks)
            {
                switch (block?["type"]?.GetValue<string>())
                {
                    case "image" when block["source"] is not JsonObject source
                        || !(source["type"]?.GetValue<string>() switch
                        {
                            "base64" => source["media_type"] is not null && source["data"] is not null,
                            "url" => source["url"] is not null,
                            _ => false,
                        }):
                        return "messages: an image block needs a base64 source (media_type, data) or a url source";
                    case "tool_use" when block["id"] is null || block["name"] is null || block["input"] is not JsonObject:
                        return "messages: a tool_use block needs id, name and an input object";
                    case "tool_use":
                        toolUseIds.Add(block["id"]!.GetValue<string>());
                        break;
                    case "tool_result" when !toolUseIds.Contains(block["tool_use_id"]?.GetValue<string>() ?? ""):
                        return "messages: a tool_result block must answer an earlier tool_use id";
                }
            }
        }
        return parameters["tools"] is JsonArray tools && tools.Any(t => t?["input_schema"] is not JsonObject)
            ? "tools: each tool needs an input_schema object"
            : null;
    }
}
