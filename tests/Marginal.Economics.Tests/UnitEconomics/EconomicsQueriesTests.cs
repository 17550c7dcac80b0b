using Marginal.Core.Ledger;
using Marginal.Economics.UnitEconomics;

namespace Marginal.Economics.Tests.UnitEconomics;

public sealed class EconomicsQueriesTests
{
    private static readonly DateTimeOffset Since = new(2026, 11, 1, 10, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Until = Since.AddHours(2);
    private static readonly OwnedPool[] Pool = [new("local", CostPerHourUsd: 1.0m, EnergyPerHourUsd: 0.2m)];
    private static readonly SpilloverPrice[] Spill = [new("m-api", 2.5m, 10m, "test")];

    private static UsageRecord Record(string id, int minute, string tenant, string? model, string? provider, string capacity, long input, long output,
        decimal? cost, decimal? marginal = null, decimal? revenue = null, string? cache = null, string? route = "explicit", string levers = "",
        string kind = UsageRecordKinds.Usage, string? adjusts = null) => new(
        Id: id, Time: Since.AddMinutes(minute), Tenant: tenant, KeyId: "k", RequestedModel: model ?? "m", ServedModel: model,
        Provider: provider, CapacitySource: capacity, Status: "ok", Streamed: false, InputTokens: input, CachedInputTokens: 0,
        CacheWriteTokens: 0, OutputTokens: output, ReasoningTokens: 0, UsageSource: "reported", LatencyMs: 10, TimeToFirstTokenMs: null,
        CostUsd: cost, MarginalCostUsd: marginal ?? cost, RevenueUsd: revenue, CacheOutcome: cache, RouteReason: route, Levers: levers,
        SavingsUsd: null, Attempts: 1, Kind: kind, Adjusts: adjusts);

    // Two API requests of tenant a (one a cache hit), one owned request of tenant b in the second hour, one unpriced
    // request, and an adjustment adding 0.001 USD to the first request.
    private static readonly UsageRecord[] Seeded =
    [
        Record("r1", 5, "a", "m-api", "openai", "api", 1000, 500, 0.003m, cache: "miss", levers: "cache=0.001"),
        Record("r2", 10, "a", "m-api", "openai", "api", 400, 100, 0.001m, cache: "hit-exact", levers: "cache=0.002"),
        Record("r3", 70, "b", "local-m", "local", "owned", 2000, 2000, 0.5m, marginal: 0.1m, cache: "miss", route: "policy", levers: "owned=0.2"),
        Record("r4", 20, "b", "free-m", "other", "api", 100, 100, null),
        Record("adj1", 80, "a", null, null, "api", 0, 0, 0.001m, route: null, kind: UsageRecordKinds.Adjustment, adjusts: "r1"),
    ];

    private static EconomicsReport Seed(EconomicsGrouping by = EconomicsGrouping.Tenant) =>
        EconomicsQueries.Build(UsageRollup.From(Seeded), Since, Until, by, Pool, Spill);

    [Fact]
    public void Build_SeededLedger_TotalsEqualHandComputedValues()
    {
        var total = Seed().Total;

        Assert.Equal((4L, 3500L, 2700L), (total.Requests, total.InputTokens, total.OutputTokens));
        Assert.Equal(0.505m, total.CostUsd);
        Assert.Equal(0.105m, total.MarginalCostUsd);
        Assert.Equal(1L, total.UnpricedRequests);
        // 0.505 USD over the 6,000 priced tokens (the unpriced request's 200 left out)
        Assert.Equal(0.505m / 6000m * 1_000_000m, total.CostPerMillionTokensUsd);
        // Fixed = loaded − marginal: the owned request's 0.5 − 0.1; variable = marginal: its 0.1 plus the API's 0.005.
        Assert.Equal((0.4m, 0.105m), (total.FixedCostUsd, total.VariableCostUsd));
        Assert.Equal(0.4m / 0.505m, Seed().FixedShare);
        // three requests looked in the cache, one hit
        Assert.Equal(1m / 3m, total.CacheHitRate);
    }

    [Fact]
    public void Build_NoRevenueRecorded_RevenueAndMarginAreNullNotZero()
    {
        var total = Seed().Total;

        Assert.Null(total.RevenueUsd);
        Assert.Null(total.GrossMargin);
        Assert.Null(total.CostShareOfRevenue);
        Assert.Equal(4L, total.UnplannedRequests);
    }

    [Fact]
    public void Build_ByTenant_AdjustmentAddsToItsRequestsTenant()
    {
        var rows = Seed().Rows;

        Assert.Equal(["b", "a"], rows.Select(r => r.Group));
        Assert.Equal((2L, 0.005m), (rows[1].Requests, rows[1].CostUsd));
    }

    [Fact]
    public void Build_OwnedPool_UtilisationAndStrandedCostFromLoadedCost()
    {
        var pool = Assert.Single(Seed().Pools);

        // busy = 0.5 USD ÷ 1 USD/h = 0.5 h of a 2 h window; stranded = (2 − 0.5) h × (1 − 0.2 energy) USD/h: idle power
        // is not modelled, so energy is left out of stranded cost
        Assert.Equal((2m, 0.5m, 0.25m), (pool.WindowHours, pool.BusyHours, pool.Utilisation));
        Assert.Equal((2m, 1.2m), (pool.PoolCostUsd, pool.StrandedCostUsd));
        Assert.Equal(8000m, pool.TokensPerBusyHour);
        Assert.Equal(0.5m, pool.RecentUtilisation);
    }

    [Fact]
    public void Build_MarginalCurve_OwnedHeadroomAtEnergyThenSpilloverBlend()
    {
        var report = Seed();

        // headroom: (1 − 0.5) × 8,000 tokens/busy hour = 4,000 tokens at 0.2 USD/h ÷ 8,000 × 1M = 25 USD per 1M
        Assert.Equal(new MarginalSegment(0, 4000, "local headroom (energy only)", 25m), report.MarginalCurve[0]);
        // the rest at m-api's price blended by the input share 3,500 / 6,200
        var blended = 3500m / 6200m * 2.5m + (1m - 3500m / 6200m) * 10m;
        Assert.Equal(new MarginalSegment(4000, 1_000_000, "spill-over to m-api", blended), report.MarginalCurve[1]);
        Assert.Equal(25m * 4000m / 1_000_000m + blended * 996_000m / 1_000_000m, report.NextMillionTokensUsd);
    }

    [Fact]
    public void Build_NoSpilloverPrice_NextMillionIsUnpriced()
    {
        var report = EconomicsQueries.Build(UsageRollup.From(Seeded), Since, Until, EconomicsGrouping.Model, Pool, []);

        Assert.Null(report.NextMillionTokensUsd);
        Assert.Null(report.MarginalCurve[^1].UsdPerMillion);
    }

    [Fact]
    public void Build_SeededLedger_SavingsHhiAndRoutingMix()
    {
        var report = Seed();

        Assert.Equal([("owned", 0.2m), ("cache", 0.003m)], report.Savings.Select(s => (s.Lever, s.SavingsUsd)));
        Assert.All(report.Savings, s => Assert.NotEqual("as recorded by the lever", s.Counterfactual));
        var local = 0.5m / 0.505m * 100m;
        var openai = 0.005m / 0.505m * 100m;
        Assert.Equal(local * local + openai * openai, report.SupplierHhi);
        // The owned request's fixed part (0.5 loaded − 0.1 marginal) of all cost.
        Assert.Equal(0.4m / 0.505m, report.FixedShare);
        Assert.Equal([new("explicit", 3L), new KeyValuePair<string, long>("policy", 1L)], report.RoutingMix);
    }

    [Fact]
    public void Build_OutcomeRevenue_AddsToRequestAndGivesMargin()
    {
        UsageRecord[] records =
        [
            Record("p1", 1, "t", "m", "openai", "api", 100, 100, 0.004m, revenue: 0.01m),
            Record("o1", 30, "t", null, null, null!, 0, 0, null, revenue: 0.02m, kind: UsageRecordKinds.Outcome, adjusts: "p1"),
        ];

        var row = EconomicsQueries.Build(UsageRollup.From(records), Since, Until, EconomicsGrouping.Model, [], []).Rows.Single();

        Assert.Equal(("m", 0.03m), (row.Group, row.RevenueUsd));
        Assert.Equal((0.03m - 0.004m) / 0.03m, row.GrossMargin);
        Assert.Equal(0.004m / 0.03m, row.CostShareOfRevenue);
        Assert.Equal(0L, row.UnplannedRequests);
    }

    [Fact]
    public void Build_SeriesPerHour_CostTokensAndOwnedUtilisation()
    {
        var series = Seed().Series;

        Assert.Equal([Since, Since.AddHours(1)], series.Select(p => p.Hour));
        // the adjustment (minute 80) counts in its request's hour (minute 5)
        Assert.Equal((0.005m, 2200L, 0m), (series[0].CostUsd, series[0].Tokens, series[0].OwnedUtilisation));
        Assert.Equal((0.5m, 4000L, 0.5m), (series[1].CostUsd, series[1].Tokens, series[1].OwnedUtilisation));
    }

    [Fact]
    public void Hhi_OneSupplier_Is10000()
    {
        Assert.Equal(10_000m, EconomicsQueries.Hhi([3m]));
        Assert.Null(EconomicsQueries.Hhi([]));
    }
}
