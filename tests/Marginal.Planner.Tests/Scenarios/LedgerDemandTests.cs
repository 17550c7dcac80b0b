using Marginal.Core.Ledger;
using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Tests.Scenarios;

/// <summary>Demand derived from ledger records, each figure computed by hand from the seeded records.</summary>
public sealed class LedgerDemandTests
{
    private static readonly DateTimeOffset Start = new(2026, 10, 1, 0, 0, 0, TimeSpan.Zero);

    private static UsageRecord Record(DateTimeOffset time, string? model, long input, long cached, long output) =>
        new($"req_{Guid.NewGuid():N}", time, "acme", "key", model ?? "gone", model, model is null ? null : "p", "api", model is null ? "upstream_error" : "ok",
            false, input, cached, 0, output, 0, "reported", 100, null, null, null, null, null, null, "", null, 1);

    /// <summary>
    /// Ten whole days: model a, one request a day at 09:00 (800 input of which 200 cached, 160 output); model b, one
    /// request on day 3 at 15:00 (3,000 input, none cached, 320 output); and records the window must ignore.
    /// </summary>
    private static LedgerDemand TenDays() => LedgerDemand.Derive(
        [
            .. Enumerable.Range(0, 10).Select(d => Record(Start.AddDays(d).AddHours(9), "a", 800, 200, 160)),
            Record(Start.AddDays(2).AddHours(15), "b", 3000, 0, 320),
            Record(Start.AddDays(1), null, 500, 0, 0),              // no model served it: no tokens to plan
            Record(Start.AddMinutes(-1), "a", 99_999, 0, 99_999),   // before the window
            Record(Start.AddDays(10), "a", 99_999, 0, 99_999),      // at its end, which is exclusive
        ],
        Start, Start.AddDays(10));

    [Fact]
    public void Derive_TenDaysOfTwoModels_ScalesWindowToMeanMonth()
    {
        var demand = TenDays();

        Assert.Equal(10, demand.Days);
        Assert.Equal(11, demand.Records);
        Assert.Equal(["a", "b"], demand.Classes.Select(c => c.Name));
        var (a, b) = (demand.Classes[0], demand.Classes[1]);
        Assert.Equal((10L, 8_000L, 2_000L, 1_600L), (a.Requests, a.InputTokens, a.CachedInputTokens, a.OutputTokens));
        // A month is 365.25 / 12 = 30.4375 days: × 3.04375 for a 10-day window.
        Assert.Equal(24_350, a.InputTokensPerMonth);     // 8,000 × 3.04375
        Assert.Equal(4_870, a.OutputTokensPerMonth);     // 1,600 × 3.04375
        Assert.Equal(9_131, b.InputTokensPerMonth);      // 3,000 × 3.04375 = 9,131.25
        Assert.Equal(974, b.OutputTokensPerMonth);       // 320 × 3.04375
    }

    [Fact]
    public void Derive_CachedInput_SharePerClassAndInputWeightedOverall()
    {
        var demand = TenDays();

        Assert.Equal(0.25, demand.Classes[0].CacheShare);          // 2,000 / 8,000
        Assert.Equal(0, demand.Classes[1].CacheShare);
        Assert.Equal(2_000.0 / 11_000, demand.CacheHitRate);       // (2,000 + 0) / (8,000 + 3,000)
    }

    [Fact]
    public void Derive_AllOutputAtOneHour_ProfileIsThatHour()
    {
        var a = TenDays().Classes[0];

        Assert.Equal(24, a.DailyProfile.Count);
        Assert.Equal(1, a.DailyProfile[9]);
        Assert.Equal(1, a.DailyProfile.Sum());
        Assert.Equal(9, a.PeakHour);
    }

    [Fact]
    public void Derive_WindowNotWholeDays_ProfileDividesByHoursCovered()
    {
        // 12:00 on day 1 to midnight after day 2: hours 12–23 are in the window twice, hours 0–11 once. 100 output
        // tokens at 18:00 on both days and 100 at 06:00 on day 2 are the same rate, 100 tokens per hour covered.
        var since = Start.AddHours(12);
        var demand = LedgerDemand.Derive(
            [
                Record(Start.AddHours(18), "a", 0, 0, 100),
                Record(Start.AddDays(1).AddHours(6), "a", 0, 0, 100),
                Record(Start.AddDays(1).AddHours(18).AddMinutes(30), "a", 0, 0, 100),
            ],
            since, Start.AddDays(2));

        var profile = demand.Classes.Single().DailyProfile;
        Assert.Equal(0.5, profile[6]);    // 100 / 1 h  ÷ (100 + 100)
        Assert.Equal(0.5, profile[18]);   // 200 / 2 h  ÷ (100 + 100)
        Assert.Equal(1, profile.Sum(), 12);
        Assert.Null(demand.CacheHitRate); // no input tokens
    }

    [Fact]
    public void Derive_OutputGrowingOnePercentADay_GrowthIsThatCompoundedOverAMonth()
    {
        // 28 whole days with output × 1.01 each day, then half a day whose huge figure must stay out of the trend.
        var records = Enumerable.Range(0, 28)
            .Select(d => Record(Start.AddDays(d).AddHours(12), "a", 0, 0, (long)Math.Round(1e9 * Math.Pow(1.01, d))))
            .Append(Record(Start.AddDays(28).AddHours(6), "a", 0, 0, 1_000_000_000_000))
            .ToList();

        var a = LedgerDemand.Derive(records, Start, Start.AddDays(28.5)).Classes.Single();

        Assert.Equal(28, a.TrendDays);
        Assert.NotNull(a.GrowthPerMonth);
        // ln y = a + d·ln 1.01 exactly, so the fitted slope is ln 1.01: growth = 1.01^30.4375 − 1 ≈ 35.4%.
        Assert.Equal(Math.Pow(1.01, 30.4375) - 1, a.GrowthPerMonth.Value, 6);
    }

    [Fact]
    public void Derive_FewerThanFourteenDaysWithTraffic_NoGrowth()
    {
        var a = TenDays().Classes[0];

        Assert.Equal(10, a.TrendDays);
        Assert.Null(a.GrowthPerMonth);
    }

    [Fact]
    public void ApplyTo_TrendAboveTheScenarioLimit_KeepsScenarioGrowthWithNote()
    {
        // Output doubling every day for 14 days: 2^30.4375 − 1 a month, far above the limit of 10 (1,000%).
        var demand = LedgerDemand.Derive(
            Enumerable.Range(0, 14).Select(d => Record(Start.AddDays(d).AddHours(12), "m", 0, 0, 1L << d)),
            Start, Start.AddDays(14));

        var applied = demand.ApplyTo(Scenario());

        Assert.Equal(14, demand.Classes.Single().TrendDays);
        Assert.Null(demand.Classes.Single().GrowthPerMonth);
        Assert.Equal(0.05, applied.Scenario.Config.Workloads["m"]!.GrowthPerMonth);
        Assert.Contains("m: growth 5.0% a month kept from workload 'chat': the trend is above 1000% a month", applied.Notes);
    }

    [Fact]
    public void Derive_ServedModelWithoutOutput_LeftOutWithNote()
    {
        var demand = LedgerDemand.Derive(
            [Record(Start.AddHours(1), "embedder", 5_000, 0, 0), Record(Start.AddHours(2), "a", 10, 0, 10)],
            Start, Start.AddDays(1));

        Assert.Equal("a", Assert.Single(demand.Classes).Name);
        Assert.Equal("embedder: left out: no output tokens in the window (1 requests)", Assert.Single(demand.Notes));
    }

    [Fact]
    public void Derive_WindowEndingBeforeItStarts_Throws()
    {
        Assert.Throws<ArgumentException>(() => LedgerDemand.Derive([], Start, Start));
    }

    private static Scenario Scenario() => TestScenarios.Parse(TestScenarios.OnDemand, """
        workloads:
          chat:
            model: m
            input_tokens_per_month: 300000000000
            output_tokens_per_month: 100000000000
            growth_per_month: 0.05
            latency_slo_ms_per_token: 40
            batch_share: 0.3
            surges: [{ month: 2, day: 3, hour: 10, hours: 2, multiplier: 2 }]
        """, """
        levers:
          cache_hit_rate: 0.5
          small_model: m
          small_model_share: 0.1
        """);

    [Fact]
    public void ApplyTo_ObservedClasses_ReplaceWorkloadsAndCacheLever()
    {
        // Served models "m" (a model of the scenario) and "gpt-x" (not one): same figures as TenDays for a and b.
        var demand = LedgerDemand.Derive(
            [
                .. Enumerable.Range(0, 10).Select(d => Record(Start.AddDays(d).AddHours(9), "m", 800, 200, 160)),
                Record(Start.AddDays(2).AddHours(15), "gpt-x", 3000, 0, 320),
            ],
            Start, Start.AddDays(10));

        var applied = demand.ApplyTo(Scenario());

        var config = applied.Scenario.Config;
        Assert.Equal("test (from ledger)", applied.Scenario.Name);
        Assert.Equal(["gpt-x", "m"], config.Workloads.Keys.Order());
        var m = config.Workloads["m"]!;
        Assert.Equal(("m", 24_350L, 4_870L), (m.Model, m.InputTokensPerMonth, m.OutputTokensPerMonth));
        Assert.Equal(1, m.DailyProfile[9]);
        // What the ledger cannot show comes from the scenario's workload for the same model.
        Assert.Equal((0.05, 40.0, 0.3, 1), (m.GrowthPerMonth, m.LatencySloMsPerToken, m.BatchShare, m.Surges.Count));
        Assert.Equal("m", config.Workloads["gpt-x"]!.Model);
        Assert.Equal(2_000.0 / 11_000, config.Levers.CacheHitRate);
        Assert.Equal(0, config.Levers.SmallModelShare);
        Assert.Equal(
            [
                "gpt-x: not a model of the scenario; planned as m",
                "gpt-x: growth 5.0% a month kept from workload 'chat': 1 whole days with traffic, the trend needs 14",
                "m: growth 5.0% a month kept from workload 'chat': 10 whole days with traffic, the trend needs 14",
                "levers.small_model_share 10.0% set to 0: the observed classes already show what each model served",
            ],
            applied.Notes);
        Assert.All(applied.Workloads, w => Assert.False(w.GrowthFromLedger));
    }

    [Fact]
    public void ApplyTo_Scenario_LeavesTheLoadedScenarioUnchanged()
    {
        var scenario = Scenario();

        TenDays().ApplyTo(scenario);

        Assert.Equal(["chat"], scenario.Config.Workloads.Keys);
        Assert.Equal(0.5, scenario.Config.Levers.CacheHitRate);
        Assert.Equal(0.1, scenario.Config.Levers.SmallModelShare);
    }

    [Fact]
    public void ApplyTo_ObservedDemand_PlansMonthOneAtTheObservedMonthlyOutput()
    {
        var applied = TenDays().ApplyTo(Scenario());

        var plan = CapacityPlanner.Plan(applied.Scenario, new PlanOptions(FiniteDifferences: false, Tornado: false));

        // Month 1 serves what the window scaled to a month: 4,870 + 974 output tokens (the projection is in millions).
        Assert.Equal((4_870 + 974) / 1e6, plan.Projection.Months[0].OutputTokens, 9);
    }
}
