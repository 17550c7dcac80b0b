using BenchmarkDotNet.Attributes;
using Marginal.Planner.Optimisation;
using Marginal.Planner.Scenarios;

namespace Marginal.Benchmarks;

/// <summary>
/// The planner's target: a one-year hourly scenario (8,760 periods) with at least 10 supply options solves in at most
/// 5 s. The scenario is bench/scenarios/hourly-year.yaml (11 options), embedded; how it was run: docs/benchmarks.md, "Planner".
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

    /// <summary>Demand and throughputs (performance model) for 8,760 hours, then the portfolio and its hourly dispatch.</summary>
    [Benchmark]
    public decimal HourlyYearElevenOptions() => PortfolioOptimiser.Optimise(PlanInputs.Build(_scenario, PlanKnobs.None)).NetPresentCost;
}
