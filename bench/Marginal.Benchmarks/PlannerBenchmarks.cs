using BenchmarkDotNet.Attributes;
using Marginal.Planner.Optimisation;
using Marginal.Planner.Scenarios;

namespace Marginal.Benchmarks;

/// <summary>
/// The planner's targets: a one-year hourly scenario (8,760 periods) with at least 10 supply options solves in at most
/// 5 s as an LP, and in at most 10 s with its purchases, contract levels and deals solved as integers (SCIP on the
/// duration-curve decision model, then the hourly dispatch; what Optimise does since integers replaced rounding). The scenario is bench/scenarios/hourly-year.yaml (11 options), embedded; how it was run: docs/benchmarks.md, "Planner".
/// </summary>
[MemoryDiagnoser]
public class PlannerBenchmarks
{
    private Scenario _scenario = null!;

    [GlobalSetup]
    public void Setup()
    {
        using var stream = typeof(PlannerBenchmarks).Assembly.GetManifestResourceStream("hourly-year.yaml")!;
        using var reader = new StreamReader(stream);
        _scenario = ScenarioLoader.Parse(reader.ReadToEnd(), "hourly-year.yaml");
    }

    /// <summary>Demand and throughputs (performance model) for 8,760 hours, then the integer portfolio and its hourly dispatch.</summary>
    [Benchmark]
    public decimal HourlyYearElevenOptions() => PortfolioOptimiser.Optimise(PlanInputs.Build(_scenario, PlanKnobs.None)).NetPresentCost;
}
