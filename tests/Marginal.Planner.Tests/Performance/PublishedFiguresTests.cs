using Marginal.Planner.Hardware;
using Marginal.Planner.Performance;
using Marginal.Planner.Scenarios;
using Marginal.Planner.Tests.Scenarios;

namespace Marginal.Planner.Tests.Performance;

/// <summary>The performance and cost model's arithmetic against figures worked by hand from published inputs, each within 5%, with its source.</summary>
public sealed class PublishedFiguresTests
{
    private const double Tolerance = 0.05;

    private static void AssertWithin(double expected, double actual) =>
        Assert.True(Math.Abs(actual - expected) <= Tolerance * Math.Abs(expected), $"expected {expected} ± 5%, got {actual}");

    /// <summary>
    /// u* = F / (R − v) with F and v worked out by hand from the catalogue's own H100 figures and the scenario's prices,
    /// against what the planner prints in its break-even table (no hard-coded F or v: a wrong depreciation, colocation or
    /// power term in the planner fails here).
    /// </summary>
    [Fact]
    public void BreakEven_OwnedH100FromTheCatalogue_MatchesFAndVWorkedByHand()
    {
        var scenario = ScenarioLoader.Parse(TestScenarios.Header + "\n" + TestScenarios.Workload() + """
            supply:
              own:
                kind: own
                accelerator: h100-sxm
                colocation_per_kw_month: 180
                power_price_per_kwh: 0.08
                pue: 1.3
                ops_per_gpu_month: 150
                source: test
                as_of: "2026-11"
              od:
                kind: on_demand
                accelerator: h100-sxm
                price_per_gpu_hour: 2.99
                source: test
                as_of: "2026-11"
            """, "test.yaml");
        var h100 = AcceleratorCatalogue.Shipped["h100-sxm"];

        var breakEven = Assert.Single(CapacityPlanner.Solve(scenario, Marginal.Planner.Optimisation.PlanKnobs.None).Projection.BreakEvens);

        // By hand: capex = catalogue price × (1 + 0.3 server overhead, the default); a month is 365.25 × 24 / 12 = 730.5 h.
        var hoursPerMonth = 365.25 * 24 / 12;
        var capex = (double)h100.PurchasePrice!.Value * 1.3;
        var depreciation = capex * (1 - h100.ResidualFraction) / (h100.LifetimeYears * 12 * hoursPerMonth);
        var colocationAndOps = (180 * h100.PowerKw!.Value + 150) / hoursPerMonth;
        var f = depreciation + colocationAndOps;
        var v = 0.08 * h100.PowerKw.Value * 1.3;
        var u = f / (2.99 - v);
        // With the catalogue as shipped ($25,000, 5 years, 10% residual, 0.7 kW): F = 0.6674 + 0.3778 = 1.0452, v = 0.0728, u* = 35.8%.
        Assert.Equal(f, (double)breakEven.FixedPerHour, 6);
        Assert.Equal(v, (double)breakEven.VariablePerHour, 6);
        Assert.Equal(2.99, (double)breakEven.RentPerHour, 6);
        Assert.Equal(u, breakEven.Utilisation!.Value, 6);
    }

    [Fact]
    public void BreakEvenUtilisation_RentBelowVariableCost_OwningNeverPays()
    {
        Assert.Null(PerformanceModel.BreakEvenUtilisation(1.9m, 0.13m, 0.10m));
    }

    /// <summary>
    /// Roofline bounds on one H100 SXM (NVIDIA H100 datasheet, 2023: 3.35 TB/s, dense 989 TFLOP/s bf16, 1,979 fp8), for
    /// Llama-3.1-8B (8.03 B parameters) and Llama-3.1-70B (70.6 B) (Meta model cards, 2024-07), no KV traffic counted:
    /// <list type="bullet">
    /// <item>8B bf16, batch 1: every step reads all 16.06 GB of weights, tok/s = BW / W = 3.35e12 / 16.06e9 ≈ 208.6;</item>
    /// <item>70B fp8, batch 1: 3.35e12 / 70.6e9 ≈ 47.5 (70.6 GB fits one 80 GB H100);</item>
    /// <item>8B bf16, batch 100k: compute-bound, tok/s = F / 2N = 989e12 / (2 × 8.03e9) ≈ 61.6k.</item>
    /// </list>
    /// </summary>
    [Theory]
    [InlineData(8.03, 2, "bf16", 1, 208.6)]
    [InlineData(70.6, 1, "fp8", 1, 47.5)]
    [InlineData(8.03, 2, "bf16", 100_000, 61_600)]
    public void DecodeTokensPerSecond_OnH100_RooflineBound(double parametersB, double bytesPerParameter, string precision, int batch, double expected)
    {
        var h100 = AcceleratorCatalogue.Shipped["h100-sxm"];

        var tokensPerSecond = PerformanceModel.DecodeTokensPerSecond(batch, h100.BandwidthTbS * 1e12, h100.DenseTflops[precision] * 1e12,
            parametersB * 1e9 * bytesPerParameter, 0, parametersB * 1e9);

        AssertWithin(expected, tokensPerSecond);
    }

    [Fact]
    public void Estimate_LatencyTarget_BatchKeepsStepWithinTarget()
    {
        var load = new ServingLoad(70.6, 70.6, 1, 163_840, 3000, 3, 0);
        var h100 = AcceleratorCatalogue.Shipped["h100-sxm"];

        var tight = PerformanceModel.Estimate(load, h100, "fp8", new PerformanceConfig(), 1, 0.010)!;
        var loose = PerformanceModel.Estimate(load, h100, "fp8", new PerformanceConfig(), 1, null)!;

        Assert.True(tight.StepSeconds <= 0.010, $"step {tight.StepSeconds}");
        Assert.True(tight.Batch < loose.Batch);
        Assert.True(tight.OutputTokensPerGpuHour < loose.OutputTokensPerGpuHour);
    }

    [Fact]
    public void Estimate_ModelLargerThanAnyGroup_Null()
    {
        var load = new ServingLoad(10_000, 10_000, 2, 1_000_000, 4096, 1, 0);

        Assert.Null(PerformanceModel.Estimate(load, AcceleratorCatalogue.Shipped["h100-sxm"], "bf16", new PerformanceConfig(), 1, null));
    }
}
