using Marginal.Core.Ledger;
using Marginal.Storage.Sqlite;

namespace Marginal.Cli.Tests.Commands;

/// <summary><c>marginal demo</c> through the real executable, in a fresh working directory with no config.</summary>
public sealed class DemoCommandTests
{
    [Fact]
    public async Task Demo_FreshDirectory_PrintsSummaryAndLeavesLedger()
    {
        var directory = Directory.CreateTempSubdirectory("marginal-cli-demo-");
        try
        {
            var (exit, stdout, stderr) = await MarginalProcess.RunAsync(directory.FullName, "demo", "--requests", "6", "--concurrency", "3");

            Assert.True(exit == 0, stderr + stdout);
            Assert.Contains("requests (ok / failed)", stdout, StringComparison.Ordinal);
            Assert.Contains("6 / 0", stdout, StringComparison.Ordinal);
            Assert.Contains("per 1M tokens, fully loaded", stdout, StringComparison.Ordinal);
            Assert.Contains("busy fraction", stdout, StringComparison.Ordinal);
            var ledger = Path.Combine(directory.FullName, ".marginal", "demo.db");
            Assert.True(File.Exists(Path.Combine(directory.FullName, ".marginal", "tiny-q4_0.gguf")));
            var records = new List<UsageRecord>();
            await using (var store = SqliteStore.Open(ledger))
            {
                await foreach (var record in store.ReadAsync())
                {
                    records.Add(record);
                }
            }
            Assert.Equal(6, records.Count);
            Assert.All(records, r =>
            {
                Assert.Equal("owned", r.CapacitySource);
                Assert.True(r.CostUsd > 0);
                Assert.True(r.MarginalCostUsd <= r.CostUsd);
            });
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            directory.Delete(recursive: true);
        }
    }
}
