using System.Globalization;
using System.Text;
using Marginal.Planner.Optimisation;
using Marginal.Planner.Scenarios;
using Xunit.Abstractions;

namespace Marginal.Planner.Tests.Optimisation;

/// <summary>
/// Whole nodes, contract levels and deals are solved as integers, not rounded: the plan is never dearer than an
/// alternative it was offered (any single option alone, or owning nothing), and never further above the LP bound than
/// the gap it reports.
/// </summary>
public sealed class IntegerDecisionTests(ITestOutputHelper output)
{
    /// <summary>
    /// Stated tolerance of "never dearer": the MIP's relative gap (<see cref="PortfolioOptimiser.RelativeGap"/>, a
    /// millionth) plus a cent, for the double arithmetic of the solvers.
    /// </summary>
    private static decimal Tolerance(decimal cost) => Math.Abs(cost) * (decimal)PortfolioOptimiser.RelativeGap + 0.01m;

    /// <summary>
    /// The case that rounding got wrong: demand worth about 2.9 H100s on average, owned H100s sold in 8-GPU nodes. The LP
    /// buys a fraction of a node; rounding up bought a whole node that then ran at about a third of its hours, below its
    /// own break-even, for a plan dearer than renting everything, which it had been offered.
    /// </summary>
    public const string FractionOfANode = """
        name: fraction-of-a-node
        start: 2027-01
        horizon_months: 24
        models:
          m: { parameters_b: 8, precision: bf16, kv_bytes_per_token: 131072, context_tokens: 2000 }
        workloads:
          chat:
            model: m
            input_tokens_per_month: 34800000000
            output_tokens_per_month: 11600000000
            daily_profile: [1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1]
        supply:
          own:
            kind: own
            accelerator: h100-sxm
            gpus_per_node: 8
            colocation_per_kw_month: 150
            power_price_per_kwh: 0.1
            ops_per_gpu_month: 50
            source: test
            as_of: "2026-11"
          od:
            kind: on_demand
            accelerator: h100-sxm
            price_per_gpu_hour: 2.5
            source: test
            as_of: "2026-11"
        """;

    private static Portfolio Optimise(Scenario scenario) => PortfolioOptimiser.Optimise(PlanInputs.Build(scenario, PlanKnobs.None));

    [Fact]
    public void Optimise_LpWantsAFractionOfAnEightGpuNode_NotDearerThanRentingEverything()
    {
        var withOwn = Optimise(ScenarioLoader.Parse(FractionOfANode, "test.yaml"));
        var rentOnly = Optimise(ScenarioLoader.Parse(Without(FractionOfANode, "own"), "test.yaml"));

        output.WriteLine($"plan {withOwn.NetPresentCost:N0}, LP bound {withOwn.LowerBound:N0} (gap {withOwn.LpGap:P2}), renting only {rentOnly.NetPresentCost:N0}");
        Assert.True(withOwn.NetPresentCost <= rentOnly.NetPresentCost + Tolerance(rentOnly.NetPresentCost),
            $"plan {withOwn.NetPresentCost:N0} against renting only {rentOnly.NetPresentCost:N0}");
    }

    /// <summary>
    /// 200 small seeded scenarios (2 to 4 months, a representative day each, 2 to 4 options drawn from every kind with
    /// random prices, node sizes, lead times, terms, minimum sizes and budgets): the plan costs no more than each option
    /// alone and than owning nothing, wherever those can serve the demand.
    /// </summary>
    [Fact]
    public void Optimise_200SeededScenarios_NeverDearerThanAnySingleOptionOrOwningNothing()
    {
        var failures = new List<string>();
        var compared = 0;
        for (var seed = 1; seed <= 200; seed++)
        {
            var (yaml, names) = RandomScenario(seed);
            var plan = Optimise(ScenarioLoader.Parse(yaml, $"seed-{seed}.yaml"));
            // The bounds it prints hold: LP bound ≤ proven bound ≤ cost ≤ LP bound × (1 + gap), and the proof is complete.
            Assert.True(plan.LowerBound <= plan.BestBound + Tolerance(plan.BestBound), $"seed {seed}: LP bound {plan.LowerBound} above the MIP bound {plan.BestBound}");
            Assert.True(plan.BestBound <= plan.NetPresentCost + Tolerance(plan.NetPresentCost), $"seed {seed}: bound {plan.BestBound} above the cost {plan.NetPresentCost}");
            Assert.True(plan.NetPresentCost <= plan.LowerBound * (1 + (decimal)plan.LpGap!.Value) + Tolerance(plan.NetPresentCost), $"seed {seed}: cost above LP bound × (1 + gap)");
            Assert.True(plan.OptimalityGap <= PortfolioOptimiser.RelativeGap * 1.01, $"seed {seed}: optimality gap {plan.OptimalityGap} not proven");
            var alternatives = names.Select(n => ($"{n} alone", names.Where(other => other != n).Aggregate(yaml, Without))).ToList();
            if (names.Any(n => n.StartsWith("own", StringComparison.Ordinal)) && names.Any(n => !n.StartsWith("own", StringComparison.Ordinal)))
            {
                alternatives.Add(("owning nothing", names.Where(n => n.StartsWith("own", StringComparison.Ordinal)).Aggregate(yaml, Without)));
            }
            foreach (var (what, text) in alternatives)
            {
                decimal cost;
                try
                {
                    cost = Optimise(ScenarioLoader.Parse(text, $"seed-{seed}.yaml")).NetPresentCost;
                }
                catch (ScenarioException)
                {
                    continue; // cannot serve the demand alone: not an alternative
                }
                compared++;
                if (plan.NetPresentCost > cost + Tolerance(cost))
                {
                    failures.Add($"seed {seed}: plan {plan.NetPresentCost:N2} > {what} {cost:N2}");
                }
            }
        }
        output.WriteLine($"{compared} alternatives compared; {failures.Count} dearer");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>A random small scenario for <paramref name="seed"/> and the names of its supply options.</summary>
    private static (string Yaml, List<string> Options) RandomScenario(int seed)
    {
        var random = new Random(seed);
        double Between(double low, double high) => low + random.NextDouble() * (high - low);
        string F(double value) => value.ToString("0.####", CultureInfo.InvariantCulture);
        var months = random.Next(2, 5);
        var output = (long)Math.Exp(Between(Math.Log(2e9), Math.Log(6e10)));
        var profile = random.Next(2) == 0 ? "" : $"\n    daily_profile: [{string.Join(", ", Enumerable.Range(0, 24).Select(_ => F(Between(0.2, 3))))}]";
        var yaml = new StringBuilder($$"""
            name: seed-{{seed}}
            start: 2027-01
            horizon_months: {{months}}
            models:
              m: { parameters_b: 8, precision: bf16, kv_bytes_per_token: 131072, context_tokens: 2000 }
            workloads:
              chat:
                model: m
                input_tokens_per_month: {{(long)(output * Between(0.5, 4))}}
                output_tokens_per_month: {{output}}
                growth_per_month: {{F(Between(0, 0.3))}}
                batch_share: {{F(random.Next(2) == 0 ? 0 : Between(0, 0.6))}}{{profile}}

            """);
        if (random.Next(4) == 0)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"finance:\n  capex_budget: {random.Next(1, 40) * 10_000}\n");
        }
        yaml.Append("supply:\n");
        var kinds = new List<string> { random.Next(2) == 0 ? "on_demand" : "api" };
        var count = random.Next(1, 4);
        string[] pool = ["own", "own", "reserved", "on_demand", "spot", "api", "joint_venture"];
        for (var i = 0; i < count; i++)
        {
            kinds.Add(pool[random.Next(pool.Length)]);
        }
        var names = new List<string>();
        foreach (var kind in kinds)
        {
            var name = $"{kind}{names.Count}";
            names.Add(name);
            yaml.Append(CultureInfo.InvariantCulture, $"  {name}:\n    kind: {kind}\n    source: test\n    as_of: \"2026-11\"\n");
            var body = kind switch
            {
                "own" => $"accelerator: h100-sxm\ncapex_per_gpu: {random.Next(15, 40) * 1000}\ngpus_per_node: {new[] { 1, 4, 8 }[random.Next(3)]}\n"
                    + $"lead_time_months: {random.Next(0, 2)}\ncolocation_per_kw_month: {random.Next(100, 200)}\npower_price_per_kwh: {F(Between(0.05, 0.15))}\n"
                    + $"ops_per_gpu_month: {random.Next(0, 100)}" + (random.Next(3) == 0 ? $"\nmax_gpus: {random.Next(1, 5) * 8}" : ""),
                "reserved" => $"accelerator: h100-sxm\nprice_per_gpu_hour: {F(Between(1.2, 2.6))}\nterm_months: {random.Next(1, months + 2)}\n"
                    + $"take_or_pay: {F(Between(0.5, 1))}\nmin_gpus: {new[] { 0, 0, 8, 16, 32 }[random.Next(5)]}\ngpus_per_node: {new[] { 1, 8 }[random.Next(2)]}",
                "on_demand" => $"accelerator: h100-sxm\nprice_per_gpu_hour: {F(Between(2, 4))}",
                "spot" => $"accelerator: h100-sxm\nprice_per_gpu_hour: {F(Between(0.8, 1.6))}\npreemption_rate: {F(Between(0.05, 0.2))}",
                "api" => $"input_per_m: {F(Between(0.02, 0.2))}\noutput_per_m: {F(Between(0.1, 0.6))}\nbatch_multiplier: {F(Between(0.5, 1))}",
                _ => $"accelerator: h100-sxm\nfacility_gpus: {random.Next(8, 200)}\nshare: {F(Between(0.1, 0.5))}\nfacility_capex: {random.Next(200, 6000) * 1000}\n"
                    + $"facility_opex_per_month: {random.Next(10, 200) * 1000}\nlead_time_months: {random.Next(0, months)}",
            };
            foreach (var line in body.Split('\n'))
            {
                yaml.Append("    ").Append(line).Append('\n');
            }
        }
        return (yaml.ToString(), names);
    }

    /// <summary>The scenario text with supply option <paramref name="option"/> (its key and indented body) removed.</summary>
    private static string Without(string scenario, string option)
    {
        var lines = scenario.Split('\n');
        var result = new StringBuilder();
        var skipping = false;
        foreach (var line in lines)
        {
            var indent = line.Length - line.TrimStart().Length;
            if (line.TrimStart().StartsWith(option + ":", StringComparison.Ordinal) && indent == 2)
            {
                skipping = true;
                continue;
            }
            if (skipping && indent > 2)
            {
                continue;
            }
            skipping = false;
            result.Append(line).Append('\n');
        }
        return result.ToString();
    }
}
