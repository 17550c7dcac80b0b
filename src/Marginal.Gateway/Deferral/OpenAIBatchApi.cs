using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Gateway.Configuration;

namespace Marginal.Gateway.Deferral;

/// <summary>
/// OpenAI's Batch API over HTTP, in its wire format (https://platform.openai.com/docs/api-reference/batch, read
/// 2026-11-28): upload a JSONL file with <c>purpose=batch</c> to <c>/files</c>, create a batch for
/// <c>/v1/chat/completions</c> with a 24-hour window, poll it, download its output and error files. The OpenAI .NET SDK
/// exposes these only as untyped protocol methods, so plain HTTP is as direct and keeps the format visible here.
/// </summary>
public sealed class OpenAIBatchApi : IBatchApi
{
    private readonly HttpClient _http;
    private readonly string _baseUrl;

    private OpenAIBatchApi(HttpClient http, string baseUrl)
    {
        _http = http;
        _baseUrl = baseUrl.TrimEnd('/');
    }

    /// <summary>The batch API of the openai-kind provider <paramref name="name"/>, with its key, headers and timeout.</summary>
    public static OpenAIBatchApi Create(string name, ProviderConfig config, TimeProvider time)
    {
        var http = BatchHttp.Create(name, config, time);
        return new OpenAIBatchApi(http, config.BaseUrl ?? "https://api.openai.com/v1");
    }

    /// <summary>Every chat request goes through as it is.</summary>
    public Task<JsonObject> PrepareAsync(JsonObject chatRequest, CancellationToken cancellationToken) => Task.FromResult(chatRequest);

    public async Task<string> SubmitAsync(string jsonl, CancellationToken cancellationToken)
    {
        var fileId = await UploadAsync(jsonl, cancellationToken);
        var batch = await CreateAsync(fileId, cancellationToken);
        return batch["id"]!.GetValue<string>();
    }

    public async Task<IReadOnlyList<JsonNode>> ReadResultsAsync(JsonObject batch, CancellationToken cancellationToken)
    {
        var lines = new List<JsonNode>();
        foreach (var file in new[] { batch["output_file_id"], batch["error_file_id"] })
        {
            if (file?.GetValue<string>() is not { Length: > 0 } fileId)
            {
                continue;
            }
            var content = await ContentAsync(fileId, cancellationToken);
            foreach (var text in content.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (JsonNode.Parse(text) is { } line)
                {
                    lines.Add(line);
                }
            }
        }
        return lines;
    }

    /// <summary>Uploads <paramref name="jsonl"/> as a batch input file; returns the file id.</summary>
    public async Task<string> UploadAsync(string jsonl, CancellationToken cancellationToken)
    {
        using var form = new MultipartFormDataContent();
        form.Add(new StringContent("batch"), "purpose");
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/jsonl");
        form.Add(file, "file", "marginal-batch.jsonl");
        var body = await SendAsync(HttpMethod.Post, "/files", form, cancellationToken);
        return body["id"]!.GetValue<string>();
    }

    /// <summary>Creates a batch over the uploaded file; returns the batch object.</summary>
    public Task<JsonObject> CreateAsync(string inputFileId, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, "/batches", Json(new JsonObject
        {
            ["input_file_id"] = inputFileId,
            ["endpoint"] = "/v1/chat/completions",
            ["completion_window"] = "24h",
        }), cancellationToken);

    /// <summary>The batch object: <c>status</c> validating, in_progress, finalizing, completed, failed, expired, cancelling or cancelled.</summary>
    public Task<JsonObject> GetAsync(string batchId, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, $"/batches/{Uri.EscapeDataString(batchId)}", null, cancellationToken);

    /// <summary>Asks the provider to stop the batch; requests already done are still billed by it.</summary>
    public async Task CancelAsync(string batchId, CancellationToken cancellationToken) => await CancelBatchAsync(batchId, cancellationToken);

    private Task<JsonObject> CancelBatchAsync(string batchId, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, $"/batches/{Uri.EscapeDataString(batchId)}/cancel", null, cancellationToken);

    /// <summary>The content of a file (an output or error JSONL file).</summary>
    public async Task<string> ContentAsync(string fileId, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"{_baseUrl}/files/{Uri.EscapeDataString(fileId)}/content"));
        return await BatchHttp.ReadAsync(_http, request, cancellationToken);
    }

    private static StringContent Json(JsonObject body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    private async Task<JsonObject> SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(_baseUrl + path)) { Content = content };
        return await BatchHttp.SendAsync(_http, request, cancellationToken);
    }

    public void Dispose() => _http.Dispose();
}
