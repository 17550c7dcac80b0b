using Marginal.Core.Storage;
using Marginal.Server.Composition;
using System.ClientModel;
using System.ClientModel.Primitives;
using Marginal.Core.Ledger;
using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;
using Marginal.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenAI;

namespace Marginal.Server.Tests;

/// <summary>
/// The real gateway on a loopback port in front of two fake upstreams: <c>primary</c> and <c>secondary</c>.
/// Models: <c>gpt-test</c> (primary, falls back to <c>gpt-backup</c> on secondary), <c>gpt-solo</c> (primary, no fallback),
/// <c>embed-test</c> (primary, embeddings).
/// </summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private GatewayHost(FakeUpstream primary, FakeUpstream secondary, WebApplication app, string configPath, RecordingLoggerProvider logs, MarginalConfig config)
    {
        _config = config;
        Logs = logs;
        Primary = primary;
        Secondary = secondary;
        App = app;
        ConfigPath = configPath;
        BaseUrl = new Uri(app.Urls.First());
        Http = new HttpClient { BaseAddress = BaseUrl };
        OpenAI = new OpenAIClient(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(BaseUrl, "/v1"),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
    }

    public FakeUpstream Primary { get; }
    public FakeUpstream Secondary { get; }
    public WebApplication App { get; private set; }
    public string ConfigPath { get; }
    public Uri BaseUrl { get; }
    public HttpClient Http { get; private set; }

    private readonly MarginalConfig _config;

    /// <summary>Stops the gateway and starts a new one on the same port, config and storage: what survives is what was durable.</summary>
    public async Task RestartAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        App = MarginalServer.Create(_config, null, BaseUrl.ToString().TrimEnd('/'), logging: l => l.AddProvider(Logs));
        await App.StartAsync();
        Http = new HttpClient { BaseAddress = BaseUrl };
    }

    /// <summary>What the gateway logged at Warning and above.</summary>
    public RecordingLoggerProvider Logs { get; }

    /// <summary>The official OpenAI SDK, pointed at the gateway.</summary>
    public OpenAIClient OpenAI { get; }

    public static string DefaultYaml(FakeUpstream primary, FakeUpstream secondary, string extra = "") => $"""
        server:
          max_request_body_bytes: 65536
          auth: none
        pricing:
          book: prices.yaml
        {extra}
        providers:
          primary:
            kind: openai
            base_url: {primary.OpenAIBaseUrl}
            timeout: 2s
            headers:
              x-team: research
          secondary:
            kind: openai
            base_url: {secondary.OpenAIBaseUrl}
            timeout: 2s
        models:
          gpt-test:
            provider: primary
            upstream: up-model
            price: test-price
            fallbacks: [gpt-backup]
          gpt-backup:
            provider: secondary
            upstream: backup-model
            price: backup-price
          gpt-solo:
            provider: primary
            upstream: solo-model
          embed-test:
            provider: primary
            upstream: embed-up
            price: embed-price
            type: embedding
        """;

    /// <summary>
    /// The price book beside the test config, in round numbers so costs are easy to compute by hand (USD per 1M tokens):
    /// <c>test-price</c> input 2, cached input 0.5, output 8, batch multiplier 0.5; <c>backup-price</c> input 1, output 4; <c>embed-price</c> input 0.02;
    /// <c>claude-price</c> input 3, cached input 0.3, cache writes 3.75 (5-minute) and 6 (1-hour), output 15, batch multiplier 0.5.
    /// </summary>
    public const string PriceBookYaml = """
        models:
          test-price:
            provider: openai
            upstream: up-model
            context_window: 128000
            tokenizer: o200k_base
            quality_tier: standard
            capacity: api
            input: 2
            cached_input: 0.5
            output: 8
            batch_multiplier: 0.5
            source: test
            as_of: 2026-11-27
          backup-price:
            provider: openai
            upstream: backup-model
            context_window: 128000
            tokenizer: o200k_base
            quality_tier: economy
            capacity: rented
            input: 1
            output: 4
            source: test
            as_of: 2026-11-27
          embed-price:
            provider: openai
            upstream: embed-up
            context_window: 8192
            tokenizer: cl100k_base
            quality_tier: economy
            capacity: api
            input: 0.02
            output: 0.02
            source: test
            as_of: 2026-11-27
          claude-price:
            provider: anthropic
            upstream: claude-up
            context_window: 200000
            tokenizer: cl100k_base
            quality_tier: standard
            capacity: api
            input: 3
            cached_input: 0.3
            cache_write_5m: 3.75
            cache_write_1h: 6
            output: 15
            batch_multiplier: 0.5
            source: test
            as_of: 2026-11-27
        """;

    /// <summary>The ledger the gateway records into.</summary>
    public ILedgerStore Ledger => App.Services.GetRequiredService<ILedgerStore>();

    public static async Task<GatewayHost> StartAsync(Func<FakeUpstream, FakeUpstream, string>? yaml = null, bool watch = false)
    {
        var primary = await FakeUpstream.StartAsync();
        var secondary = await FakeUpstream.StartAsync();
        var dir = Directory.CreateTempSubdirectory("marginal-test-");
        var path = Path.Combine(dir.FullName, "marginal.yaml");
        await File.WriteAllTextAsync(path, (yaml ?? ((p, s) => DefaultYaml(p, s)))(primary, secondary));
        await File.WriteAllTextAsync(Path.Combine(dir.FullName, "prices.yaml"), PriceBookYaml);
        var config = ConfigLoader.Load(path);
        if (!File.ReadAllText(path).Contains("auth:", StringComparison.Ordinal))
        {
            // Tests about other things run open; the key tests say auth: keys.
            config.Server.Auth = "none";
        }
        if (config.Storage.Path == new StorageConfig().Path)
        {
            config.Storage.Path = Path.Combine(dir.FullName, "ledger.db");
        }
        var logs = new RecordingLoggerProvider();
        var app = MarginalServer.Create(config, watch ? path : null, "http://127.0.0.1:0", logging: l => l.AddProvider(logs));
        await app.StartAsync();
        return new GatewayHost(primary, secondary, app, path, logs, config);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        await Primary.DisposeAsync();
        await Secondary.DisposeAsync();
        Directory.Delete(Path.GetDirectoryName(ConfigPath)!, recursive: true);
    }
}
