using Marginal.Server.Composition;
using System.Net;
using System.Text;
using Marginal.Core.Ledger;
using Marginal.Core.Pricing;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
using Marginal.Local.Scheduling;
using Marginal.Server.Hosting;
using Marginal.Storage.Sqlite;
using Marginal.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Marginal.Local.Tests.Providers;

/// <summary>
/// The tiny model as an owned pool with hardware costs, behind the real gateway with an SQLite ledger. <c>pool</c>
/// batches 4 with no spill-over; <c>spilling</c> has one slot and spills to <c>rented</c> (a FakeUpstream priced as
/// rented capacity) as soon as a request would queue.
/// </summary>
[Collection(LocalModelCollection.Name)]
public sealed class OwnedPoolGatewayTests(TestModelFiles files) : IAsyncLifetime
{
    // $87,600 over 12 months = $10/h; 2 kW × 1.5 × $0.10 = $0.30/h; $730 a month = $1/h: $11.30/h.
    private static readonly OwnedPoolCost Cost = new(87_600m, 12, 2m, 0.10m, 1.5m, 365m, 365m);

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("marginal-owned-");
    private FakeUpstream _rented = null!;
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    private string LedgerPath => Path.Combine(_dir.FullName, "ledger.db");

    public async Task InitializeAsync()
    {
        _rented = await FakeUpstream.StartAsync();
        await File.WriteAllTextAsync(Path.Combine(_dir.FullName, "prices.yaml"), """
            models:
              rented-price: { provider: openai, upstream: rented-model, context_window: 128000, tokenizer: o200k_base,
                quality_tier: economy, capacity: rented, input: 1, output: 4, source: test, as_of: 2026-11-28 }
            """);
        var pool = """
                pool:
                  purchase_usd: 87600
                  lifetime_months: 12
                  power_kw: 2
                  usd_per_kwh: 0.10
                  pue: 1.5
                  colocation_usd_per_month: 365
                  operations_usd_per_month: 365
            """;
        var yaml = $"""
            server:
              auth: none
            storage:
              path: {LedgerPath}
            pricing:
              book: {Path.Combine(_dir.FullName, "prices.yaml")}
            # Every request must reach the model: the tests compare answers and timings of repeated prompts.
            cache:
              exact:
                enabled: false
            providers:
              pool:
                kind: local
                path: {files.Path}
                threads: 2
                max_batch: 4
                queue_limit: 8
                context: 128
            {pool}
              spilling:
                kind: local
                path: {files.Path}
                threads: 2
                max_batch: 1
                queue_limit: 4
                context: 2048
                max_queue_wait: 1ms
            {pool}
              rented:
                kind: openai
                base_url: {_rented.OpenAIBaseUrl}
                timeout: 5s
            models:
              tiny:
                provider: pool
              tiny-spill:
                provider: spilling
                fallbacks: [rented-model]
              rented-model:
                provider: rented
                price: rented-price
            """;
        _app = MarginalServer.Create(ConfigLoader.Parse(yaml, "marginal.yaml"), urls: "http://127.0.0.1:0");
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(_app.Urls.First()) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _rented.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    private BatchScheduler Scheduler(string provider) =>
        (BatchScheduler)_app.Services.GetRequiredService<GatewayModelSource>().Current.Providers[provider].Chat.GetService(typeof(BatchScheduler))!;

    private static StringContent Body(string model, string text, int maxTokens, bool stream = false) => new(
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":"{{text}}"}],"max_tokens":{{maxTokens}},"temperature":0,"stream":{{(stream ? "true" : "false")}}}""",
        Encoding.UTF8, "application/json");

    private async Task<List<UsageRecord>> LedgerAsync()
    {
        await using var store = SqliteStore.Open(LedgerPath);
        var records = new List<UsageRecord>();
        await foreach (var record in store.ReadAsync())
        {
            records.Add(record);
        }
        return records;
    }

    [Fact]
    public async Task Post_OwnedPoolWindow_RequestCostsAddUpToPoolCostOfBusyTime()
    {
        var before = Scheduler("pool").GetStats();

        // Ten at once into four slots, mixed lengths: some run with headroom, some queue.
        var responses = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => _http.PostAsync("/v1/chat/completions", Body("tiny", $"question {i} {new string('x', i * 7)}", 6 + (i % 3) * 5))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var after = Scheduler("pool").GetStats();
        var busy = after.BusyTime - before.BusyTime;
        var owned = (await LedgerAsync()).Where(r => r.Provider == "pool").ToList();
        Assert.Equal(10, owned.Count);
        Assert.All(owned, r => Assert.Equal("owned", r.CapacitySource));
        // The identity: Σ fully loaded = pool $/h × busy hours of the window (each share is rounded to a tick, 100 ns, and its
        // cost to 10 decimal places).
        var sum = owned.Sum(r => r.CostUsd!.Value);
        var expected = Cost.CostPerHour * busy.Ticks / TimeSpan.TicksPerHour;
        var tolerance = Cost.CostPerHour * owned.Count / TimeSpan.TicksPerHour;
        Assert.True(Math.Abs(sum - expected) <= tolerance, $"Σ requests {sum} vs pool for {busy.TotalMilliseconds} ms busy {expected}");
        Assert.True(sum > 0);
        // Marginal is energy only with headroom (0.30 / 11.30 of the fully loaded cost), the whole cost when queued.
        Assert.All(owned, r => Assert.True(r.MarginalCostUsd == r.CostUsd || Math.Abs(r.MarginalCostUsd!.Value / r.CostUsd!.Value - Cost.EnergyPerHour / Cost.CostPerHour) < 0.0001m));
        Assert.Contains(owned, r => r.MarginalCostUsd < r.CostUsd);
    }

    [Fact]
    public async Task Post_OwnedPoolSaturated_SpillsToRentedFallback()
    {
        using var hold = new CancellationTokenSource();
        // Occupy the only slot with a long stream (seconds of decoding), and wait until it is decoding.
        using var longRequest = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Body("tiny-spill", "a long answer", 1800, stream: true) };
        using var running = await _http.SendAsync(longRequest, HttpCompletionOption.ResponseHeadersRead, hold.Token);
        Assert.Equal(HttpStatusCode.OK, running.StatusCode);
        var reader = new StreamReader(await running.Content.ReadAsStreamAsync(hold.Token));
        await reader.ReadLineAsync(hold.Token);
        Assert.True(Scheduler("spilling").ExpectedWait() > TimeSpan.FromMilliseconds(1));

        using var spilled = await _http.PostAsync("/v1/chat/completions", Body("tiny-spill", "spill me", 5));
        await hold.CancelAsync();

        Assert.Equal(HttpStatusCode.OK, spilled.StatusCode);
        Assert.Equal("rented", spilled.Headers.GetValues("x-marginal-provider").Single());
        Assert.Contains(_rented.Requests, r => r.Body.Contains("rented-model", StringComparison.Ordinal));
        var record = (await LedgerAsync()).Single(r => r.Provider == "rented");
        Assert.Equal("rented", record.CapacitySource);
        Assert.Equal("ok", record.Status);
        Assert.Equal("tiny-spill", record.RequestedModel);
        Assert.Equal(2, record.Attempts);
    }

    [Fact]
    public async Task GetMetrics_OwnedPool_ExportsPoolUtilisationBeforeAnyRequest()
    {
        var text = "";
        // The exporter caches a scrape for a moment; poll until the pool gauges appear.
        for (var i = 0; i < 50 && !text.Contains("marginal_pool_busy_fraction", StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
            text = await _http.GetStringAsync("/metrics");
        }

        Assert.Contains("marginal_pool_busy_fraction{", text, StringComparison.Ordinal);
        Assert.Contains("marginal_pool_batch_occupancy{", text, StringComparison.Ordinal);
        Assert.Contains("marginal_pool_tokens_per_second", text, StringComparison.Ordinal);
        Assert.Contains("provider=\"pool\"", text, StringComparison.Ordinal);
    }
}
