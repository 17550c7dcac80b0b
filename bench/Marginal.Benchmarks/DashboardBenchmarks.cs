using Marginal.Server.Composition;
using System.Diagnostics;
using System.Net.Http.Headers;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Marginal.Core.Ledger;
using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;
using Marginal.Storage.Sqlite;
using Microsoft.AspNetCore.Builder;

namespace Marginal.Benchmarks;

/// <summary>
/// The dashboard over a ledger of <see cref="Records"/> records spread over 30 days (4 tenants × 4 models × 2 route
/// reasons × 3 cache outcomes, an owned share, levers and revenue on half), through a real server on loopback.
/// <c>Data</c>: GET /dashboard/data (rollups read and the report built and serialised). <c>Page</c>: what a browser
/// fetches to open the dashboard: the page, Chart.js, the script, the style and the data. <c>RawRecords</c> is the
/// baseline without rollups: every record read and rolled up per request. The first roll-forward of the seeded
/// ledger (once, after seeding) is timed in the setup and printed.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 8)]
public class DashboardBenchmarks
{
    private const string AdminVariable = "MARGINAL_BENCH_ADMIN_KEY";
    private const string AdminKey = "bench-admin-key-0123456789abcdefghijk";
    private string _directory = "";
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private SqliteStore _store = null!;

    [Params(1_000_000)]
    public int Records { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        _directory = Directory.CreateTempSubdirectory("marginal-bench-dashboard-").FullName;
        var ledger = Path.Combine(_directory, "ledger.db");
        var seeding = Stopwatch.StartNew();
        await DashboardLedger.SeedAsync(ledger, Records, DateTimeOffset.UtcNow);
        Console.WriteLine($"// seeded {Records:N0} records in {seeding.Elapsed.TotalSeconds:0.0} s");
        _store = SqliteStore.Open(ledger);
        var rolling = Stopwatch.StartNew();
        var rolled = await _store.RollForwardAsync();
        Console.WriteLine($"// first roll-forward: {rolled:N0} records in {rolling.Elapsed.TotalSeconds:0.0} s; rollup rows: {(await _store.ReadRollupsAsync()).Count:N0}");

        Environment.SetEnvironmentVariable(AdminVariable, AdminKey);
        var config = new MarginalConfig();
        config.Server.Auth = "none";
        config.Server.AdminKeyEnv = AdminVariable;
        config.Storage.Path = ledger;
        _app = MarginalServer.Create(config, urls: "http://127.0.0.1:0");
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(_app.Urls.First()) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _store.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark]
    public async Task<int> Data() => (await _http.GetByteArrayAsync("/dashboard/data")).Length;

    [Benchmark]
    public async Task<int> Page()
    {
        var bytes = 0;
        foreach (var path in new[] { "/dashboard", "/dashboard/chart.js", "/dashboard/dashboard.js", "/dashboard/dashboard.css", "/dashboard/data" })
        {
            bytes += (await _http.GetByteArrayAsync(path)).Length;
        }
        return bytes;
    }

    [Benchmark(Baseline = true)]
    public async Task<int> RawRecords()
    {
        var records = new List<UsageRecord>(Records);
        await foreach (var record in _store.ReadAsync())
        {
            records.Add(record);
        }
        return UsageRollup.From(records).Count;
    }
}
