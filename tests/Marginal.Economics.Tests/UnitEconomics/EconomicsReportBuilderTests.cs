using Marginal.Core.Ledger;
using Marginal.Economics.UnitEconomics;

namespace Marginal.Economics.Tests.UnitEconomics;

public sealed class EconomicsReportBuilderTests
{
    private static readonly DateTimeOffset Ten = new(2026, 11, 1, 10, 0, 0, TimeSpan.Zero);

    private static UsageRecord Record(string id, DateTimeOffset time, string provider, string capacity, decimal cost) => new(
        Id: id, Time: time, Tenant: "t", KeyId: "k", RequestedModel: "m", ServedModel: "m", Provider: provider, CapacitySource: capacity,
        Status: "ok", Streamed: false, InputTokens: 100, CachedInputTokens: 0, CacheWriteTokens: 0, OutputTokens: 100, ReasoningTokens: 0,
        UsageSource: "reported", LatencyMs: 10, TimeToFirstTokenMs: null, CostUsd: cost, MarginalCostUsd: cost, RevenueUsd: null,
        CacheOutcome: null, RouteReason: "explicit", Levers: "", SavingsUsd: null, Attempts: 1, Kind: UsageRecordKinds.Usage, Adjusts: null);

    // An API request at 10:05 opens the ledger; the pool's first request comes at 11:30 and is charged 0.25 USD at
    // 1 USD/h (0.25 busy hours). The report runs to 12:00.
    private static readonly UsageRecord[] Ledger =
    [
        Record("api", Ten.AddMinutes(5), "openai", "api", 0.01m),
        Record("owned", Ten.AddMinutes(90), "local", "owned", 0.25m),
    ];

    private static PoolUtilisation Pool(decimal? idleEnergyPerHour) =>
        Assert.Single(new EconomicsReportBuilder([new OwnedPool("local", 1.0m, 0.2m, idleEnergyPerHour)], [])
            .Build(Ledger, since: null, until: Ten.AddHours(2), EconomicsGrouping.Model, now: Ten.AddHours(2)).Pools);

    [Fact]
    public void Build_PoolStartedAfterLedgerStart_WindowStartsAtPoolsFirstRecord()
    {
        var pool = Pool(null);

        // Window 11:30–12:00 = 0.5 h (not 10:00–12:00 = 2 h); utilisation 0.25 ÷ 0.5 = 50% (not 12.5%).
        Assert.Equal((0.5m, 0.25m, 0.5m), (pool.WindowHours, pool.BusyHours, pool.Utilisation));
    }

    [Fact]
    public void Build_IdlePowerNotModelled_StrandedCostLeavesEnergyOut()
    {
        var pool = Pool(null);

        // (0.5 − 0.25) h × (1 − 0.2) USD/h = 0.2 USD (was (2 − 0.25) × 1 = 1.75 USD).
        Assert.Equal(0.2m, pool.StrandedCostUsd);
        Assert.StartsWith("energy left out", pool.StrandedBasis, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_IdlePowerModelled_StrandedCostIncludesIdleEnergy()
    {
        // idle_power_kw 0.1 × PUE 1.25 × 0.4 USD/kWh = 0.05 USD/h idle energy
        var pool = Pool(0.1m * 1.25m * 0.4m);

        // (0.5 − 0.25) h × (1 − 0.2 + 0.05) USD/h = 0.2125 USD
        Assert.Equal(0.2125m, pool.StrandedCostUsd);
        Assert.StartsWith("idle energy included", pool.StrandedBasis, StringComparison.Ordinal);
    }
}
