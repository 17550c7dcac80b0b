using Marginal.Core.Ledger;
using Marginal.Storage.Sqlite;

namespace Marginal.Cli.Tests.Commands;

/// <summary>
/// Every CSV the CLI writes neutralises text cells a spreadsheet would run as a formula, and leaves numbers alone. The
/// ledger holds names the gateway never checked (records written before tenant names were checked, client model names).
/// </summary>
public sealed class CsvInjectionTests() : UpstreamWorkspace("none")
{
    private const string Formula = "=HYPERLINK(\"http://evil.example\",\"x\")";

    private async Task SeedAsync()
    {
        await using var ledger = SqliteStore.Open(Path.Combine(WorkDir, "marginal.db"));
        await ledger.AppendAsync(
        [
            new UsageRecord("req_1", DateTimeOffset.UtcNow.AddMinutes(-5), "+tenant", "none", Formula, Formula, "@provider", "api", "ok", false,
                10, 0, 0, 5, 0, "reported", 12, null, 0.5m, 0.5m, null, null, "explicit", "", null, 1),
            new UsageRecord("req_2", DateTimeOffset.UtcNow.AddMinutes(-4), "-2+3", "none", "deepseek-chat", "deepseek-chat", "fake", "api", "ok", false,
                10, 0, 0, 5, 0, "reported", 12, null, 0.25m, 0.25m, null, null, "explicit", "", null, 1),
        ]);
    }

    [Theory]
    [InlineData("report", "--by", "model")]
    [InlineData("report", "--by", "tenant")]
    [InlineData("report", "--by", "provider")]
    [InlineData("report", "economics", "--by", "model")]
    [InlineData("report", "economics", "--by", "tenant")]
    public async Task ReportCsv_CellsStartingWithFormulaCharacters_ArePrefixedWithAQuote(params string[] command)
    {
        await SeedAsync();

        var (exit, csv, error) = await MarginalProcess.RunAsync(WorkDir, [.. command, "--format", "csv", "--config", ConfigPath]);

        Assert.True(exit == 0, error);
        var firstCells = csv.Trim().Split('\n').Skip(1).Select(line => line.TrimStart('"')).ToList();
        Assert.NotEmpty(firstCells);
        Assert.All(firstCells, line => Assert.DoesNotMatch("^[=+\\-@\\t\\r]", line));
        Assert.Contains(firstCells, line => line.StartsWith('\''));
    }
}
