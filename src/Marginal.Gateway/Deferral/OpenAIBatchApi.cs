using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Core.Errors;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Providers;

namespace Marginal.Gateway.Deferral;

/// <summary>
/// OpenAI's Batch API over HTTP, in its wire format (https://platform.openai.com/docs/api-reference/batch, read
/// 2026-11-28): upload a JSONL file with <c>purpose=batch</c> to <c>/files</c>, create a batch for
/// <c>/v1/chat/completions</c> with a 24-hour window, poll it, download its output and error files. The OpenAI .NET SDK
/// exposes these only as untyped protocol methods, so plain HTTP is as direct and keeps the format visible here.
/// </summary>
public sealed class OpenAIBatchApi : IDisposable
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
        if (ProviderFactory.MissingKeyMessage(name, config, out var apiKey) is { } missing)
        {
            throw new GatewayException(GatewayErrorKind.UpstreamUnavailable, missing, "provider_not_configured");
        }
        var http = ProviderHttp.Create(config, apiKey, time);
        if (apiKey is not null && (config.ApiKeyHeader is null || config.ApiKeyHeader.Equals("authorization", StringComparison.OrdinalIgnoreCase)))
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }
        return new OpenAIBatchApi(http, config.BaseUrl ?? "https://api.openai.com/v1");
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
    public Task<JsonObject> CancelAsync(string batchId, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, $"/batches/{Uri.EscapeDataString(batchId)}/cancel", null, cancellationToken);

    /// <summary>The content of a file (an output or error JSONL file).</summary>
    public async Task<string> ContentAsync(string fileId, CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync(new Uri($"{_baseUrl}/files/{Uri.EscapeDataString(fileId)}/content"), cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        ThrowOnError(response, text);
        return text;
    }

    private static StringContent Json(JsonObject body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    private async Task<JsonObject> SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(_baseUrl + path)) { Content = content };
        using var response = await _http.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        ThrowOnError(response, text);
        return JsonNode.Parse(text) as JsonObject
            ?? throw new GatewayException(GatewayErrorKind.UpstreamError, "The batch API answered with something that is not a JSON object.", "upstream_invalid_response");
    }

    private static void ThrowOnError(HttpResponseMessage response, string body)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw ProviderErrors.FromStatus("batch", (int)response.StatusCode, ProviderErrors.ReadMessage(body), null);
        }
    }

    public void Dispose() => _http.Dispose();
}
