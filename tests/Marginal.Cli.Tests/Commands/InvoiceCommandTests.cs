using Marginal.Core.Ledger;
using Marginal.Storage.Sqlite;

namespace Marginal.Cli.Tests.Commands;

public sealed class InvoiceCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("marginal-invoice-").FullName;
    private readonly string _config;

    public InvoiceCommandTests()
    {
        _config = Path.Combine(_dir, "marginal.yaml");
        File.WriteAllText(_config, "server:\n  auth: none\nstorage:\n  path: ledger.db\nbilling:\n  plans: plans.yaml\n");
        File.WriteAllText(Path.Combine(_dir, "plans.yaml"), """
            plans:
              pro:
                prices: { m: { input: 1, output: 1 } }
                discount: 0.1
                commitment_usd: 100
            tenants:
              acme: { plan: pro }
            """);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // The current month: an adjustment is dated when it is made, so the records are put in the month it lands in.
    private static readonly DateTimeOffset MonthStart = new(DateTimeOffset.UtcNow.Year, DateTimeOffset.UtcNow.Month, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly string Month = $"{MonthStart:yyyy-MM}";

    private async Task SeedAsync()
    {
        await using var store = SqliteStore.Open(Path.Combine(_dir, "ledger.db"));
        var t = MonthStart.AddMinutes(1);
        await store.AppendAsync(
        [
            new UsageRecord("req_a", t, "acme", "k1", "m", "m", "p", "api", "ok", false, 30_000_000, 0, 0, 10_000_000, 0, "reported", 1, null, 12m, 12m, 36m, null, "explicit", "", null, 1),
            new UsageRecord("req_b", t.AddMinutes(1), "acme", "k1", "m", "m", "p", "api", "ok", false, 20_000_000, 0, 0, 0, 0, "reported", 1, null, 6m, 6m, 18m, null, "explicit", "", null, 1),
        ]);
    }

    private Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(params string[] args) => MarginalProcess.RunAsync(_dir, [.. args, "--config", _config]);

    [Fact]
    public async Task Invoice_SameLedgerTwice_IsByteIdentical()
    {
        await SeedAsync();

        var first = await RunAsync("invoice", "--tenant", "acme", "--month", Month, "--format", "csv");
        var second = await RunAsync("invoice", "--tenant", "acme", "--month", Month, "--format", "csv");

        Assert.Equal(0, first.ExitCode);
        Assert.Equal(first.Stdout, second.Stdout);
        // 60 USD of usage, 10% off = 54; trued up to the 100 commitment.
        Assert.Contains("true_up,,0,0,0,0,46.000000", first.Stdout, StringComparison.Ordinal);
        Assert.Contains("total,,0,0,0,0,100.000000", first.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AdjustThenClose_AdjustmentOnInvoiceAndCloseBooksOnce()
    {
        await SeedAsync();

        var adjust = await RunAsync("adjust", "--request", "req_b", "--usd", "-2", "--reason", "slow answers");
        var invoice = await RunAsync("invoice", "--tenant", "acme", "--month", Month);
        var close = await RunAsync("invoice", "--tenant", "acme", "--month", Month, "--format", "json", "--close");
        var again = await RunAsync("invoice", "--tenant", "acme", "--month", Month, "--format", "json", "--close");

        Assert.Equal(0, adjust.ExitCode);
        Assert.Contains("slow answers | -2.000000 |", invoice.Stdout, StringComparison.Ordinal);
        Assert.Contains("| **total** | **98.000000** |", invoice.Stdout, StringComparison.Ordinal);
        // Invoice 98 less the ledger's per-record revenue 36 + 18 − 2.
        Assert.Contains($"booked month:acme:{Month}: 46 USD", close.Stderr, StringComparison.Ordinal);
        Assert.Contains("already booked", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(close.Stdout, again.Stdout);
    }

    [Fact]
    public async Task Invoice_KnownTenantWithoutUsage_IsZeroWithNoNegativeZero()
    {
        File.WriteAllText(Path.Combine(_dir, "plans.yaml"), """
            plans:
              pro:
                prices: { m: { input: 1, output: 1 } }
                discount: 0.1
            tenants:
              acme: { plan: pro }
            """);

        var md = await RunAsync("invoice", "--tenant", "acme", "--month", Month);
        var csv = await RunAsync("invoice", "--tenant", "acme", "--month", Month, "--format", "csv");

        Assert.Equal(0, md.ExitCode);
        Assert.Contains("| discount 10% | 0.000000 |", md.Stdout, StringComparison.Ordinal);
        Assert.Contains("| credits applied | 0.000000 |", md.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("-0.000000", md.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("-0.000000", csv.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("invoice", "--tenant", "acme", "--month", "2026-13", "marginal invoice: --month: '2026-13' is not a month")]
    [InlineData("invoice", "--tenant", "acme", "--month", "2026-11", "--format", "pdf", "marginal invoice: --format: 'pdf' is not allowed (allowed: md, json, csv)")]
    [InlineData("invoice", "--tenant", "acmee", "--month", "2026-11", "marginal invoice: --tenant: 'acmee' is not a known tenant")]
    [InlineData("credits", "add", "--tenant", "acme", "--usd", "-5", "marginal credits add: --usd: '-5' is not a positive amount in USD")]
    [InlineData("adjust", "--request", "req_none", "--usd", "1", "--reason", "x", "marginal adjust: --request: no record 'req_none'")]
    public async Task BadInput_ExitsWith2AndOneLine(params string[] argsAndMessage)
    {
        var (exit, _, stderr) = await RunAsync(argsAndMessage[..^1]);

        Assert.Equal(2, exit);
        Assert.StartsWith(argsAndMessage[^1], stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
