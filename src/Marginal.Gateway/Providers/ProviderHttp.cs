using System.Net;
using Marginal.Gateway.Configuration;
using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace Marginal.Gateway.Providers;

/// <summary>The HTTP stack every provider uses: pooled sockets (never written to once the upstream closed them), a Polly timeout to the response headers, extra headers.</summary>
internal static class ProviderHttp
{
    /// <summary>Default time to the upstream's response headers. A non-streamed completion only sends headers when it is done, so this is generous.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(120);

    public static TimeSpan TimeoutOf(ProviderConfig config) =>
        config.Timeout is { } text && ConfigLoader.TryParseDuration(text, out var timeout) ? timeout : DefaultTimeout;

    public static HttpClient Create(ProviderConfig config, string? apiKey, TimeProvider time)
    {
        var connections = new StaleConnections();
        var sockets = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = TimeSpan.FromSeconds(10),
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            // An API gateway answers with the upstream's status; it does not follow a 3xx to another host.
            AllowAutoRedirect = false,
            ConnectCallback = connections.ConnectAsync,
        };
        var retry = new StaleConnections.RetryHandler(connections) { InnerHandler = sockets };
        var headers = new ProviderHeadersHandler(config.Headers, config.ApiKeyHeader, apiKey) { InnerHandler = retry };
        var pipeline = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time }
            .AddTimeout(TimeoutOf(config))
            .Build();
        return new HttpClient(new ResilienceHandler(pipeline) { InnerHandler = headers })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>Adds the configured headers, and puts the key in a custom header (e.g. Azure's <c>api-key</c>) when asked.</summary>
    private sealed class ProviderHeadersHandler(Dictionary<string, string> headers, string? apiKeyHeader, string? apiKey) : DelegatingHandler
    {
        private readonly bool _customKeyHeader = apiKeyHeader is not null && !apiKeyHeader.Equals("authorization", StringComparison.OrdinalIgnoreCase);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            foreach (var (name, value) in headers)
            {
                request.Headers.Remove(name);
                request.Headers.TryAddWithoutValidation(name, value);
            }
            if (_customKeyHeader)
            {
                request.Headers.Authorization = null;
                request.Headers.Remove("x-api-key");
                request.Headers.TryAddWithoutValidation(apiKeyHeader!, apiKey);
            }
            return base.SendAsync(request, cancellationToken);
        }
    }
}
