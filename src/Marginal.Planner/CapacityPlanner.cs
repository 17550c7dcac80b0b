using Marginal.Planner.Optimisation;
using Marginal.Planner.Projections;
using Marginal.Planner.Scenarios;

namespace Marginal.Planner;

/// <summary>One bar of the tornado: the plan's NPV with one input moved down and up.</summary>
public sealed record TornadoBar(string Input, string Low, string High, decimal NpvLow, decimal NpvHigh, decimal CostPerMillionLow, decimal CostPerMillionHigh)
{
    public decimal Swing => Math.Abs(NpvHigh - NpvLow);
}

/// <summary>A planned scenario: the optimised portfolio, its monthly accounts, shadow prices and sensitivity.</summary>
public sealed record PlanResult(
    Scenario Scenario,
    PlanInputs Inputs,
    Portfolio Portfolio,
    Projection Projection,
    IReadOnlyList<ShadowPrice> ShadowPrices,
    IReadOnlyList<TornadoBar> Tornado);

/// <summary>What <see cref="CapacityPlanner.Plan"/> computes beyond the portfolio and accounts; each extra costs full re-solves.</summary>
/// <param name="FiniteDifferences">Value of one more point of cache hit rate and one more month of lead time (2 re-solves).</param>
/// <param name="Tornado">NPV with prices, demand, growth and depreciation life moved down and up (10 re-solves).</param>
public sealed record PlanOptions(bool FiniteDifferences = true, bool Tornado = true);

/// <summary>Plans a scenario: performance model → optimiser → projections → shadow prices and tornado.</summary>
public static class CapacityPlanner
{
    public static PlanResult Plan(Scenario scenario, PlanOptions options)
    {
        var (inputs, portfolio, projection) = Solve(scenario, PlanKnobs.None);
        var shadow = new List<ShadowPrice>(portfolio.ShadowPrices);
        if (options.FiniteDifferences)
        {
            // Re-solved from scratch with the input moved: the portfolio may change too, which is the point.
            var cache = Solve(scenario, PlanKnobs.None with { CacheHitDelta = 0.01 }, PortfolioOptimiser.SensitivityMipTimeLimit).Portfolio;
            shadow.Add(new ShadowPrice("cache hit rate: one more point", portfolio.NetPresentCost - cache.NetPresentCost, "USD (NPV) per percentage point",
                "net present cost saved if one more percent of input tokens hit the prompt cache (re-optimised)"));
            if (scenario.Config.Supply.Values.Any(o => o!.Kind is "own" or "reserved" or "joint_venture"))
            {
                var lead = Solve(scenario, PlanKnobs.None with { LeadTimeDeltaMonths = 1 }, PortfolioOptimiser.SensitivityMipTimeLimit).Portfolio;
                shadow.Add(new ShadowPrice("lead time: one more month", portfolio.NetPresentCost - lead.NetPresentCost, "USD (NPV) per month",
                    "net present cost saved (negative: added) if every lead time were one month longer (re-optimised)"));
            }
        }
        var tornado = options.Tornado ? Tornado(scenario) : [];
        return new PlanResult(scenario, inputs, portfolio, projection, shadow, tornado);
    }

    /// <param name="mipTimeLimit">Most time the mixed-integer search may take (default <see cref="PortfolioOptimiser.MipTimeLimit"/>).</param>
    public static (PlanInputs Inputs, Portfolio Portfolio, Projection Projection) Solve(Scenario scenario, PlanKnobs knobs, TimeSpan? mipTimeLimit = null)
    {
        var inputs = PlanInputs.Build(scenario, knobs);
        var portfolio = PortfolioOptimiser.Optimise(inputs, mipTimeLimit);
        return (inputs, portfolio, Projector.Project(inputs, portfolio));
    }

    /// <summary>
    /// Each input moved down and up with everything else as written, the plan re-optimised each time. Utilisation is not an
    /// input (it follows from the load), so it is moved through demand: ±20% tokens changes the utilisation of what is bought.
    /// </summary>
    public static List<TornadoBar> Tornado(Scenario scenario)
    {
        var swings = new (string Input, string Low, string High, PlanKnobs Down, PlanKnobs Up)[]
        {
            ("rent and API prices", "-20%", "+20%", new(RentPriceScale: 0.8), new(RentPriceScale: 1.2)),
            ("purchase prices (capex)", "-20%", "+20%", new(CapexScale: 0.8), new(CapexScale: 1.2)),
            ("demand, so utilisation", "-20%", "+20%", new(DemandScale: 0.8), new(DemandScale: 1.2)),
            ("growth per month", "-2 pt", "+2 pt", new(GrowthDelta: -0.02), new(GrowthDelta: 0.02)),
            ("depreciation life", "-1 year", "+1 year", new(LifetimeDeltaYears: -1), new(LifetimeDeltaYears: 1)),
        };
        var bars = new List<TornadoBar>();
        foreach (var (input, low, high, down, up) in swings)
        {
            var a = Solve(scenario, down, PortfolioOptimiser.SensitivityMipTimeLimit).Projection;
            var b = Solve(scenario, up, PortfolioOptimiser.SensitivityMipTimeLimit).Projection;
            bars.Add(new TornadoBar(input, low, high, a.NetPresentValue, b.NetPresentValue, a.CostPerMillion, b.CostPerMillion));
        }
        return bars.OrderByDescending(b => b.Swing).ToList();
    }
}
