using Marginal.Server.Composition;
using System.ClientModel;
using System.ClientModel.Primitives;
using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using OpenAI;

namespace Marginal.Local.Tests.Providers;

/// <summary>The real gateway on a loopback port from a YAML config, with an official OpenAI SDK client and a raw HTTP client on it.</summary>
internal sealed class LocalGateway : IAsyncDisposable
{
    private LocalGateway(WebApplication app)
    {
        App = app;
        var baseUrl = new Uri(app.Urls.First());
        Http = new HttpClient { BaseAddress = baseUrl };
        OpenAI = new OpenAIClient(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(baseUrl, "/v1"),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
    }

    public WebApplication App { get; }

    public OpenAIClient OpenAI { get; }

    public HttpClient Http { get; }

    public static async Task<LocalGateway> StartAsync(string yaml)
    {
        var app = MarginalServer.Create(ConfigLoader.Parse(yaml, "marginal.yaml"), urls: "http://127.0.0.1:0");
        await app.StartAsync();
        return new LocalGateway(app);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
