using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Marginal.Gateway.Configuration;
using Marginal.Core.Errors;
using Marginal.Gateway.Providers;

namespace Marginal.Gateway.Deferral;

/// <summary>The HTTP exchange both batch APIs share: a non-2xx answer becomes the provider error its status maps to.</summary>
internal static class BatchHttp
{
    /// <summary>
    /// The provider's HTTP client with its key, headers and timeout: the key as <c>Authorization: Bearer</c> unless the
    /// config's <c>api_key_header</c> names another header (e.g. <c>x-api-key</c>, <c>api-key</c>).
    /// </summary>
    public static HttpClient Create(string name, ProviderConfig config, TimeProvider time)
    {
        if (ProviderKeys.MissingKeyMessage(name, config, out var apiKey) is { } missing)
        {
            throw new GatewayException(GatewayErrorKind.UpstreamUnavailable, missing, "provider_not_configured");
        }
        var http = ProviderHttp.Create(config, apiKey, time);
        if (apiKey is not null && (config.ApiKeyHeader is null || config.ApiKeyHeader.Equals("authorization", StringComparison.OrdinalIgnoreCase)))
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }
        return http;
    }

    /// <summary>Sends <paramref name="request"/> and returns the answer's JSON object; throws <see cref="GatewayException"/> otherwise.</summary>
    public static async Task<JsonObject> SendAsync(HttpClient http, HttpRequestMessage request, CancellationToken cancellationToken) =>
        JsonNode.Parse(await ReadAsync(http, request, cancellationToken)) as JsonObject
            ?? throw new GatewayException(GatewayErrorKind.UpstreamError, "The batch API answered with something that is not a JSON object.", "upstream_invalid_response");

    /// <summary>Sends <paramref name="request"/> and returns the answer's text; throws <see cref="GatewayException"/> for a non-2xx status.</summary>
    public static async Task<string> ReadAsync(HttpClient http, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var response = await http.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw ProviderErrors.FromStatus("batch", (int)response.StatusCode, ProviderErrors.ReadMessage(text), null);
        }
        return text;
    }
}
