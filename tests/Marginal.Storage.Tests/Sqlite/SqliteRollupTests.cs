using Marginal.Core.Ledger;
using Marginal.Storage.Sqlite;


namespace Marginal.Storage.Tests.Sqlite;

public sealed class SqliteRollupTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);
    private readonly string _directory = Directory.CreateTempSubdirectory("marginal-rollup-").FullName;

    private static UsageRecord Record(string id, int minutes, decimal? cost, string levers = "", string kind = UsageRecordKinds.Usage, string? adjusts = null,
        decimal? revenue = null) =>
        LedgerStoreConformance.Record(id, T0.AddMinutes(minutes), cost) with
        {
            Levers = levers, Kind = kind, Adjusts = adjusts, RevenueUsd = revenue, Tenant = adjusts is null ? "acme" : "other",
        };

    private static string Shape(IEnumerable<UsageRollup> rollups) => string.Join("\n", rollups.Select(r =>
        $"{r.Hour:O} {r.Key} {r.Requests} {r.InputTokens} {r.OutputTokens} {r.CostUsd} {r.MarginalCostUsd} {r.PricedTokens} {r.UnpricedRequests} {r.RevenueUsd} {r.RevenueRecords} {r.UnplannedRequests} {r.LeversText}"));

    [Fact]
    public async Task ReadRollupsAsync_AppendsBetweenReads_EqualsRollupOfAllRecords()
    {
        await using var store = SqliteStore.Open(Path.Combine(_directory, "r.db"));
        UsageRecord[] first = [Record("a", 1, 0.000123456789012345m, "cache=0.001"), Record("b", 70, null), Record("c", 5, 0.002m, "cache=0.0005,owned=0.1")];
        UsageRecord[] second = [Record("d", 2, 0.003m, revenue: 0.01m), Record("adj", 130, 0.0001m, kind: UsageRecordKinds.Adjustment, adjusts: "a", revenue: 0.002m)];
        await store.AppendAsync(first);
        Assert.Equal(Shape(UsageRollup.From(first)), Shape(await store.ReadRollupsAsync()));

        await store.AppendAsync(second);
        var rollups = await store.ReadRollupsAsync();

        Assert.Equal(Shape(UsageRollup.From([.. first, .. second])), Shape(rollups));
        // the adjustment went to its request's hour and tenant
        var hour0 = rollups.Single(r => r.Hour == UsageRollup.HourOf(T0) && r.Tenant == "acme");
        Assert.Equal(0.000123456789012345m + 0.002m + 0.003m + 0.0001m, hour0.CostUsd);
    }

    [Fact]
    public async Task ReadRollupsAsync_Window_ReturnsOnlyItsHours()
    {
        await using var store = SqliteStore.Open(Path.Combine(_directory, "w.db"));
        await store.AppendAsync([Record("a", 1, 0.1m), Record("b", 70, 0.2m), Record("c", 130, 0.4m)]);

        var rollups = await store.ReadRollupsAsync(T0.AddMinutes(65), T0.AddMinutes(120));

        Assert.Equal(0.2m, Assert.Single(rollups).CostUsd);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
