using System.Text.Json.Nodes;
using Marginal.Core.Ledger;
using Marginal.Storage.Sqlite;

namespace Marginal.Cli.Tests.Commands;

/// <summary><c>marginal plan SCENARIO --from-ledger</c> against an SQLite ledger seeded in a temporary directory.</summary>
public sealed class PlanFromLedgerTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 10, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly string _directory = Directory.CreateTempSubdirectory("marginal-plan-ledger-").FullName;
    private readonly string _config;
    private readonly string _ledger;

    public PlanFromLedgerTests()
    {
        _ledger = Path.Combine(_directory, "ledger.db");
        _config = Path.Combine(_directory, "marginal.yaml");
        File.WriteAllText(_config, $"storage:\n  path: '{_ledger}'\n");
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static UsageRecord Served(DateTimeOffset time, string model, long input, long cached, long output) =>
        new($"req_{Guid.NewGuid():N}", time, "acme", "key", model, model, "p", "api", "ok", false, input, cached, 0, output, 0, "reported", 100, null, null, null, null, null, null, "", null, 1);

    private async Task SeedAsync(IEnumerable<UsageRecord> records)
    {
        await using var store = SqliteStore.Open(_ledger);
        await store.AppendAsync(records.ToList());
    }

    /// <summary>
    /// Ten days from 2026-10-01: llama-70b at 09:00 (4.5 B input, a quarter cached, 1.5 B output) and 14:00 (7.5 B,
    /// a quarter cached, 2.5 B) every day; llama-8b at 02:00 (1.6 B input, none cached, 0.8 B output) every day.
    /// </summary>
    private Task SeedTenDaysAsync() => SeedAsync(Enumerable.Range(0, 10).SelectMany(d => new[]
    {
        Served(Start.AddDays(d).AddHours(9), "llama-70b", 4_500_000_000, 1_125_000_000, 1_500_000_000),
        Served(Start.AddDays(d).AddHours(14), "llama-70b", 7_500_000_000, 1_875_000_000, 2_500_000_000),
        Served(Start.AddDays(d).AddHours(2), "llama-8b", 1_600_000_000, 0, 800_000_000),
    }));

    private Task<(int ExitCode, string Stdout, string Stderr)> PlanAsync(string since = "2026-10-01", params string[] more) => MarginalProcess.RunAsync(_directory,
        ["plan", MarginalProcess.SampleScenario("startup-rent-everything"), "--from-ledger", "--config", _config, "--since", since, "--until", "2026-10-11", "--no-sensitivity", .. more]);

    [Fact]
    public async Task PlanFromLedger_SeededLedger_PrintsDerivedDemandBeforeThePlan()
    {
        await SeedTenDaysAsync();

        var (exit, stdout, stderr) = await PlanAsync();

        Assert.True(exit == 0, stderr);
        Assert.Contains("10 days, 30 requests", stdout, StringComparison.Ordinal);
        // Per month = window × 30.4375 / 10 days. llama-70b: 120 B input, 40 B output; llama-8b: 16 B input, 8 B output.
        Assert.Contains("365,250,000,000", stdout, StringComparison.Ordinal);
        Assert.Contains("121,750,000,000", stdout, StringComparison.Ordinal);
        Assert.Contains("48,700,000,000", stdout, StringComparison.Ordinal);
        Assert.Contains("24,350,000,000", stdout, StringComparison.Ordinal);
        // Peak hour of llama-70b: 14:00 carries 2.5 of its 4 B output tokens a day.
        Assert.Contains("14:00 (62.5%)", stdout, StringComparison.Ordinal);
        // Ten days are too few for a trend: the scenario's 6% a month stays, and the output says so.
        Assert.Contains("6.0% (scenario)", stdout, StringComparison.Ordinal);
        Assert.Contains("kept from workload 'chat': 10 whole days with traffic, the trend needs 14", stdout, StringComparison.Ordinal);
        // Cache hit rate = 30 B cached / 136 B input.
        Assert.Contains("cache hit rate (cached input / input): 22.1%", stdout, StringComparison.Ordinal);
        Assert.Contains("startup-rent-everything (from ledger)", stdout, StringComparison.Ordinal);
        var derived = stdout.IndexOf("Derived demand", StringComparison.Ordinal);
        Assert.InRange(derived, 0, stdout.IndexOf("Recommended portfolio", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PlanFromLedger_JsonAndLedgerYoungerThanWindow_CarriesDerivedDemandFromLedgerStart()
    {
        await SeedTenDaysAsync();

        // A 40-day window over a ledger that holds ten days: the window starts on the ledger's first day, so the
        // monthly figures are the same as over those ten days.
        var (exit, stdout, stderr) = await PlanAsync("2026-09-01", "--format", "json");

        Assert.True(exit == 0, stderr);
        var fromLedger = JsonNode.Parse(stdout)!["from_ledger"]!;
        Assert.Equal(Start, fromLedger["observed"]!["since"]!.GetValue<DateTimeOffset>());
        var classes = fromLedger["observed"]!["classes"]!.AsArray();
        Assert.Equal(["llama-70b", "llama-8b"], classes.Select(c => c!["name"]!.GetValue<string>()));
        Assert.Equal(121_750_000_000, classes[0]!["output_tokens_per_month"]!.GetValue<long>());
        Assert.Equal(30.0 / 136, fromLedger["cache_hit_rate"]!.GetValue<double>(), 12);
    }

    [Fact]
    public async Task PlanFromLedger_EmptyLedger_OneLineAndExit2()
    {
        await SeedAsync([]);

        var (exit, stdout, stderr) = await PlanAsync();

        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"marginal plan: --from-ledger: the ledger {_ledger} has no records before 2026-10-11 00:00:00Z", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PlanFromLedger_NothingInWindow_OneLineAndExit2()
    {
        await SeedAsync([Served(Start.AddDays(-20), "llama-70b", 100, 0, 100)]);

        var (exit, _, stderr) = await PlanAsync();

        Assert.Equal(2, exit);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("marginal plan: --from-ledger: no output tokens served from 2026-10-01 00:00:00Z to 2026-10-11 00:00:00Z", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plan_SinceWithoutFromLedger_OneLineAndExit2()
    {
        var (exit, _, stderr) = await MarginalProcess.RunAsync(_directory, "plan", MarginalProcess.SampleScenario("startup-rent-everything"), "--since", "7d");

        Assert.Equal(2, exit);
        Assert.Equal("marginal plan: --since and --until set the ledger's window: add --from-ledger", stderr.Trim());
    }

    /// <summary>
    /// An owned pool named like the scenario's own option (own-base-burst-cloud: own-h100): the gateway configuration
    /// prices it at 175,200 USD over 24 months (10 USD an hour) plus 4 kW × 0.05 USD/kWh (0.2 USD an hour), 10.2 USD an
    /// hour in all. Ten requests each charged 10.2 USD (one busy hour) and 36 M output tokens: 360 M tokens over 10 busy
    /// hours, 10,000 tok/s; the option's node has 8 GPUs, so 4.5 M output tokens per GPU-hour replace the model's estimate.
    /// </summary>
    [Fact]
    public async Task PlanFromLedger_OwnedPoolInLedger_UsesItsMeasuredThroughputAndSaysSo()
    {
        await File.WriteAllTextAsync(_config, $"""
            storage:
              path: '{_ledger}'
            providers:
              own-h100:
                kind: local
                path: model.gguf
                pool:
                  purchase_usd: 175200
                  lifetime_months: 24
                  power_kw: 4
                  usd_per_kwh: 0.05
            models:
              llama-70b:
                provider: own-h100
            """);
        await SeedAsync(Enumerable.Range(0, 10).Select(d =>
            Served(Start.AddDays(d).AddHours(10), "llama-70b", 72_000_000, 0, 36_000_000) with
            {
                Provider = "own-h100", CapacitySource = "owned", CostUsd = 10.2m, MarginalCostUsd = 0.2m,
            }));

        var (exit, stdout, stderr) = await MarginalProcess.RunAsync(_directory,
            ["plan", MarginalProcess.SampleScenario("own-base-burst-cloud"), "--from-ledger", "--config", _config, "--since", "2026-10-01", "--until", "2026-10-11", "--no-sensitivity"]);

        Assert.True(exit == 0, stderr);
        Assert.Contains("own-h100 / llama-70b: measured: 10,000 tok/s from the ledger over 10 busy hours (pool 'own-h100', 360,000,000 output tokens, 10 requests; taken as 8 GPUs: 4,500,000 per GPU-hour)",
            stdout, StringComparison.Ordinal);
        Assert.Contains("on-demand-h100 / llama-70b: catalogue estimate: ", stdout, StringComparison.Ordinal);
        // The plan's own table shows the measured figure for the owned option.
        Assert.Matches(@"own-h100\s+own\s+h100-sxm\s+llama-70b/llama-70b/interactive\s+4,500,000", stdout);
    }

    [Fact]
    public async Task PlanFromLedger_Json_CarriesTheThroughputFigureOfEachOption()
    {
        await SeedTenDaysAsync();

        var (exit, stdout, stderr) = await PlanAsync("2026-10-01", "--format", "json");

        Assert.True(exit == 0, stderr);
        var throughput = JsonNode.Parse(stdout)!["throughput"]!.AsArray();
        // startup-rent-everything owns nothing: every figure is the model's estimate.
        Assert.NotEmpty(throughput);
        Assert.All(throughput, t => Assert.Null(t!["measured"]));
    }
}
