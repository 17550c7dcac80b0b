using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Marginal.Testing;

/// <summary>
/// OpenAI's Files and Batch API, faithfully enough for a client to run the whole cycle
/// (https://platform.openai.com/docs/guides/batch, read 2026-11-28): <c>POST /v1/files</c> (multipart, purpose=batch),
/// <c>GET /v1/files/{id}/content</c>, <c>POST /v1/batches</c>, <c>GET /v1/batches/{id}</c>,
/// <c>POST /v1/batches/{id}/cancel</c>. A batch is <c>validating</c> when created and moves one step per poll:
/// <c>in_progress</c>, then <c>completed</c> with its output file (one line per answered request, in the real line
/// format, matched by <c>custom_id</c>) and its error file (lines whose request failed). Each line is answered the way
/// <c>/v1/chat/completions</c> would answer it.
/// </summary>
public sealed partial class FakeUpstream
{
    private readonly ConcurrentDictionary<string, string> _files = new();

    /// <summary>Every batch created, by id: its current batch object.</summary>
    public ConcurrentDictionary<string, JsonObject> Batches { get; } = new();

    /// <summary>When true, batches stay <c>in_progress</c> (the provider is slow); set back to false to let them finish.</summary>
    public bool HoldBatches { get; set; }

    /// <summary>A batch line whose last user message contains this text fails with a 400 line in the error file.</summary>
    public string FailBatchLinesContaining { get; set; } = "FAIL-THIS-LINE";

    /// <summary>
    /// A batch line whose last user message contains this text is left out of the batch's files the first time its
    /// custom id is seen (as a provider does for lines it had not reached when the batch expired); answered after.
    /// </summary>
    public string SkipBatchLinesOnceContaining { get; set; } = "SKIP-THIS-LINE-ONCE";

    private readonly ConcurrentDictionary<string, bool> _skipped = new();

    private void MapBatchApi(WebApplication app)
    {
        app.MapPost("/v1/files", (Delegate)UploadFileAsync);
        app.MapGet("/v1/files/{id}/content", (string id) => _files.TryGetValue(id, out var content)
            ? Results.Text(content, "application/octet-stream")
            : NotFound($"No such File object: {id}"));
        app.MapPost("/v1/batches", (Delegate)CreateBatchAsync);
        app.MapGet("/v1/batches/{id}", (string id) => Batches.TryGetValue(id, out var batch) ? Results.Text(Advance(batch).ToJsonString(), "application/json") : NotFound($"No batch found with id '{id}'."));
        app.MapPost("/v1/batches/{id}/cancel", (string id) =>
        {
            if (!Batches.TryGetValue(id, out var batch))
            {
                return NotFound($"No batch found with id '{id}'.");
            }
            lock (batch)
            {
                if (batch["status"]!.GetValue<string>() is "validating" or "in_progress")
                {
                    batch["status"] = "cancelled";
                    batch["cancelled_at"] = Now();
                }
            }
            return Results.Text(batch.ToJsonString(), "application/json");
        });
    }

    private static IResult NotFound(string message) => Results.Json(
        new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = "invalid_request_error", ["param"] = null, ["code"] = null } },
        statusCode: StatusCodes.Status404NotFound);

    private static IResult BadRequest(string message, string param) => Results.Json(
        new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = "invalid_request_error", ["param"] = param, ["code"] = null } },
        statusCode: StatusCodes.Status400BadRequest);

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private async Task<IResult> UploadFileAsync(HttpContext http)
    {
        var form = await http.Request.ReadFormAsync();
        RecordedRequestOf(http, $"purpose={form["purpose"]}");
        if (form["purpose"] != "batch")
        {
            return BadRequest("purpose must be 'batch' for batch input files here.", "purpose");
        }
        if (form.Files.GetFile("file") is not { } file)
        {
            return BadRequest("A file is required.", "file");
        }
        using var reader = new StreamReader(file.OpenReadStream(), Encoding.UTF8);
        var content = await reader.ReadToEndAsync();
        var id = NewFile(content);
        return Results.Json(new JsonObject
        {
            ["id"] = id, ["object"] = "file", ["bytes"] = Encoding.UTF8.GetByteCount(content), ["created_at"] = Now(),
            ["filename"] = file.FileName, ["purpose"] = "batch",
        });
    }

    private string NewFile(string content)
    {
        var id = "file-fake" + Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture);
        _files[id] = content;
        return id;
    }

    private void RecordedRequestOf(HttpContext http, string body)
    {
        if (_record)
        {
            Requests.Enqueue(new RecordedRequest(http.Request.Path, http.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()), body));
        }
    }

    private async Task<IResult> CreateBatchAsync(HttpContext http)
    {
        using var reader = new StreamReader(http.Request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync();
        RecordedRequestOf(http, text);
        var request = JsonNode.Parse(text)!;
        var inputFileId = request["input_file_id"]?.GetValue<string>();
        if (inputFileId is null || !_files.ContainsKey(inputFileId))
        {
            return BadRequest($"Invalid input_file_id '{inputFileId}'.", "input_file_id");
        }
        if (request["endpoint"]?.GetValue<string>() is not ("/v1/chat/completions" or "/v1/embeddings" or "/v1/responses"))
        {
            return BadRequest("endpoint must be /v1/chat/completions, /v1/embeddings or /v1/responses.", "endpoint");
        }
        if (request["completion_window"]?.GetValue<string>() != "24h")
        {
            return BadRequest("completion_window must be '24h'.", "completion_window");
        }
        var id = "batch_fake" + Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture);
        var batch = new JsonObject
        {
            ["id"] = id, ["object"] = "batch", ["endpoint"] = request["endpoint"]!.GetValue<string>(), ["errors"] = null,
            ["input_file_id"] = inputFileId, ["completion_window"] = "24h", ["status"] = "validating",
            ["output_file_id"] = null, ["error_file_id"] = null, ["created_at"] = Now(), ["in_progress_at"] = null,
            ["expires_at"] = Now() + 86_400, ["completed_at"] = null, ["cancelled_at"] = null,
            ["request_counts"] = new JsonObject { ["total"] = 0, ["completed"] = 0, ["failed"] = 0 }, ["metadata"] = null,
        };
        Batches[id] = batch;
        return Results.Json(batch);
    }

    /// <summary>One step of the batch's life per poll; completing it answers every line.</summary>
    private JsonObject Advance(JsonObject batch)
    {
        lock (batch)
        {
            switch (batch["status"]!.GetValue<string>())
            {
                case "validating":
                    batch["status"] = "in_progress";
                    batch["in_progress_at"] = Now();
                    break;
                case "in_progress" when !HoldBatches:
                    Complete(batch);
                    break;
            }
            return (JsonObject)batch.DeepClone();
        }
    }

    private void Complete(JsonObject batch)
    {
        var output = new StringBuilder();
        var errors = new StringBuilder();
        int total = 0, failed = 0;
        foreach (var text in _files[batch["input_file_id"]!.GetValue<string>()].Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            total++;
            var line = JsonNode.Parse(text)!;
            var request = line["body"]!;
            var requestId = "req_fake" + Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture);
            var lineId = "batch_req_fake" + Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture);
            var messages = request["messages"]!.AsArray();
            if (ContentText(messages[^1]?["content"]).Contains(SkipBatchLinesOnceContaining, StringComparison.Ordinal)
                && _skipped.TryAdd(line["custom_id"]!.GetValue<string>(), true))
            {
                continue;
            }
            if (ContentText(messages[^1]?["content"]).Contains(FailBatchLinesContaining, StringComparison.Ordinal))
            {
                failed++;
                var error = new JsonObject { ["message"] = "This request was rejected on purpose.", ["type"] = "invalid_request_error", ["param"] = "messages", ["code"] = "invalid_value" };
                errors.Append(new JsonObject
                {
                    ["id"] = lineId, ["custom_id"] = line["custom_id"]!.GetValue<string>(),
                    ["response"] = new JsonObject { ["status_code"] = 400, ["request_id"] = requestId, ["body"] = new JsonObject { ["error"] = error } },
                    ["error"] = null,
                }.ToJsonString()).Append('\n');
                continue;
            }
            var model = request["model"]?.GetValue<string>() ?? "unknown";
            var body = CompletionBody(model, "chatcmpl-fake" + Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture), Plan(request));
            output.Append(new JsonObject
            {
                ["id"] = lineId, ["custom_id"] = line["custom_id"]!.GetValue<string>(),
                ["response"] = new JsonObject { ["status_code"] = 200, ["request_id"] = requestId, ["body"] = body },
                ["error"] = null,
            }.ToJsonString()).Append('\n');
        }
        batch["status"] = "completed";
        batch["completed_at"] = Now();
        batch["output_file_id"] = output.Length > 0 ? NewFile(output.ToString()) : null;
        batch["error_file_id"] = errors.Length > 0 ? NewFile(errors.ToString()) : null;
        batch["request_counts"] = new JsonObject { ["total"] = total, ["completed"] = total - failed, ["failed"] = failed };
    }
}
