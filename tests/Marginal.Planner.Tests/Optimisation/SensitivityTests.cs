using Marginal.Planner.Tests.Scenarios;

namespace Marginal.Planner.Tests.Optimisation;

public sealed class SensitivityTests
{
    [Fact]
    public void Plan_FiniteDifferences_CacheHitPointSavesAndLongerLeadTimeCosts()
    {
        var scenario = TestScenarios.Parse(TestScenarios.OnDemand + """
              own:
                kind: own
                accelerator: h100-sxm
                lead_time_months: 1
                gpus_per_node: 1
                source: test
                as_of: "2026-11"
            """, extra: "levers:\n  cache_hit_rate: 0.3\n");

        var plan = CapacityPlanner.Plan(scenario, new PlanOptions(FiniteDifferences: true, Tornado: false));

        // Prefill of 3 input tokens per output token is a large share of the GPU time: fewer of them must cost less.
        Assert.True(plan.ShadowPrices.Single(s => s.Name.StartsWith("cache hit rate", StringComparison.Ordinal)).Value > 0);
        // Owning pays here, so owned GPUs arriving a month later leave a month more on dearer on-demand capacity.
        Assert.True(plan.ShadowPrices.Single(s => s.Name.StartsWith("lead time", StringComparison.Ordinal)).Value < 0);
    }

    [Fact]
    public void Tornado_FiveInputs_SortedByNpvSwingAndDemandMovesNpv()
    {
        var scenario = TestScenarios.Parse(TestScenarios.OnDemand, extra: "pricing:\n  plans:\n    - { name: pro, share: 1, input_per_m: 0.5, output_per_m: 2 }\n");

        var bars = CapacityPlanner.Tornado(scenario);

        Assert.Equal(5, bars.Count);
        Assert.Equal(bars.OrderByDescending(b => b.Swing).Select(b => b.Input), bars.Select(b => b.Input));
        var demand = bars.Single(b => b.Input.StartsWith("demand", StringComparison.Ordinal));
        Assert.True(demand.NpvHigh > demand.NpvLow, "more paid demand at a margin raises NPV");
        var rent = bars.Single(b => b.Input.StartsWith("rent", StringComparison.Ordinal));
        Assert.True(rent.NpvHigh < rent.NpvLow, "dearer rent lowers NPV when everything is rented");
    }
}
