using Marginal.Core.Ledger;

namespace Marginal.Storage.Tests;

/// <summary>
/// What every store that keeps hourly rollups (<see cref="IUsageRollups"/>) must do: its rollups equal
/// <see cref="UsageRollup.From"/> over its records, however the records arrived. SQLite and PostgreSQL run it.
/// </summary>
public abstract class UsageRollupConformance
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Where a new, empty store lives (a file path, a database's connection string).</summary>
    protected abstract Task<string> CreateAsync();

    /// <summary>A store at <paramref name="location"/>; several may be open on one location at once (nodes, processes).</summary>
    protected abstract Task<IMarginalStore> OpenAsync(string location);

    private static UsageRecord Record(string id, int minutes, decimal? cost, string levers = "", string kind = UsageRecordKinds.Usage, string? adjusts = null,
        decimal? revenue = null) =>
        LedgerStoreConformance.Record(id, T0.AddMinutes(minutes), cost) with
        {
            Levers = levers, Kind = kind, Adjusts = adjusts, RevenueUsd = revenue, Tenant = adjusts is null ? "acme" : "other",
        };

    /// <summary>Every figure of every rollup, one line each, for comparing two lists.</summary>
    protected static string Shape(IEnumerable<UsageRollup> rollups) => string.Join("\n", rollups.Select(r =>
        $"{r.Hour:O} {r.Key} {r.Requests} {r.Errors} {r.InputTokens} {r.CachedInputTokens} {r.OutputTokens} {r.CostUsd} {r.MarginalCostUsd} {r.PricedTokens} " +
        $"{r.UnpricedRequests} {r.RevenueUsd} {r.RevenueRecords} {r.UnplannedRequests} {r.LeversText}"));

    private async Task<IMarginalStore> OpenEmptyAsync() => await OpenAsync(await CreateAsync());

    [Fact]
    public async Task ReadRollupsAsync_AppendsBetweenReads_EqualsRollupOfAllRecords()
    {
        await using var store = await OpenEmptyAsync();
        var rollups = (IUsageRollups)store;
        UsageRecord[] first = [Record("a", 1, 0.000123456789012345m, "cache=0.001"), Record("b", 70, null), Record("c", 5, 0.002m, "cache=0.0005,owned=0.1")];
        UsageRecord[] second = [Record("d", 2, 0.003m, revenue: 0.01m), Record("adj", 130, 0.0001m, kind: UsageRecordKinds.Adjustment, adjusts: "a", revenue: 0.002m)];
        await store.AppendAsync(first);
        Assert.Equal(Shape(UsageRollup.From(first)), Shape(await rollups.ReadRollupsAsync()));

        await store.AppendAsync(second);
        var read = await rollups.ReadRollupsAsync();

        Assert.Equal(Shape(UsageRollup.From([.. first, .. second])), Shape(read));
        // the adjustment went to its request's hour and tenant
        var hour0 = read.Single(r => r.Hour == UsageRollup.HourOf(T0) && r.Tenant == "acme");
        Assert.Equal(0.000123456789012345m + 0.002m + 0.003m + 0.0001m, hour0.CostUsd);
    }

    [Fact]
    public async Task ReadRollupsAsync_Window_ReturnsOnlyItsHours()
    {
        await using var store = await OpenEmptyAsync();
        await store.AppendAsync([Record("a", 1, 0.1m), Record("b", 70, 0.2m), Record("c", 130, 0.4m)]);

        var read = await ((IUsageRollups)store).ReadRollupsAsync(T0.AddMinutes(65), T0.AddMinutes(120));

        Assert.Equal(0.2m, Assert.Single(read).CostUsd);
    }

    [Fact]
    public async Task ReadRollupsAsync_RecordAppendedTwice_CountedOnce()
    {
        await using var store = await OpenEmptyAsync();
        var record = Record("a", 1, 0.1m, "cache=0.05");
        await store.AppendAsync([record, record]);
        await store.AppendAsync([record]);

        var read = Assert.Single(await ((IUsageRollups)store).ReadRollupsAsync());

        Assert.Equal((1L, 0.1m, 0.05m), (read.Requests, read.CostUsd, read.Levers["cache"]));
    }

    [Fact]
    public async Task ReadRollupsAsync_SameHourAddedAfterARead_LeversAddUpAndEarlierResultUnchanged()
    {
        await using var store = await OpenEmptyAsync();
        var rollups = (IUsageRollups)store;
        await store.AppendAsync([Record("a", 1, 0.1m, "cache=0.01")]);
        var before = Assert.Single(await rollups.ReadRollupsAsync());

        await store.AppendAsync([Record("b", 2, 0.2m, "cache=0.02,routing=0.1")]);
        var after = Assert.Single(await rollups.ReadRollupsAsync());

        Assert.Equal((2L, 0.3m, "cache=0.03,routing=0.1"), (after.Requests, after.CostUsd, after.LeversText));
        Assert.Equal((1L, 0.1m, "cache=0.01"), (before.Requests, before.CostUsd, before.LeversText));
    }

    [Fact]
    public async Task ReadRollupsAsync_TwoStoresOnOneLedger_EachSeesEveryRecordOnce()
    {
        var location = await CreateAsync();
        await using var a = await OpenAsync(location);
        await using var b = await OpenAsync(location);
        UsageRecord[] all =
        [
            Record("r1", 1, 0.1m, "cache=0.01"), Record("r2", 61, 0.2m, "routing=0.02"), Record("r3", 3, null),
            Record("r4", 4, 0.4m, revenue: 1m), Record("adj", 200, 0.05m, kind: UsageRecordKinds.Adjustment, adjusts: "r2", revenue: 0.5m),
        ];

        // Interleaved: each store appends and reads while the other has appended and read since.
        await a.AppendAsync(all[..2]);
        await ((IUsageRollups)a).ReadRollupsAsync();
        await b.AppendAsync(all[2..4]);
        await ((IUsageRollups)b).ReadRollupsAsync();
        await Task.WhenAll(a.AppendAsync(all[4..]), b.AppendAsync(all[..1]));

        var expected = Shape(UsageRollup.From(all));
        Assert.Equal(expected, Shape(await ((IUsageRollups)a).ReadRollupsAsync()));
        Assert.Equal(expected, Shape(await ((IUsageRollups)b).ReadRollupsAsync()));
    }
}
