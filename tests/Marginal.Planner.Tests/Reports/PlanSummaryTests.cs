using Marginal.Planner.Reports;
using Marginal.Planner.Tests.Scenarios;

namespace Marginal.Planner.Tests.Reports;

public sealed class PlanSummaryTests
{
    private const string OwnedH100 = """
          own:
            kind: own
            accelerator: h100-sxm
            colocation_per_kw_month: 180
            power_price_per_kwh: 0.08
            ops_per_gpu_month: 150
            source: test
            as_of: "2026-11"

        """;

    [Fact]
    public void FixedPerGpuHour_OwnedH100_DepreciationPlusColocationAndOperations()
    {
        var plan = CapacityPlanner.Plan(TestScenarios.Parse(TestScenarios.OnDemand + OwnedH100), new PlanOptions(false, false));

        var own = plan.Inputs.Options.Single(o => o.Name == "own");

        // $25,000 × 1.3 server overhead × (1 − 10% residual) over 60 months of 730.5 h = $0.6673/h, plus
        // ($180/kW-month × 0.7 kW + $150) / 730.5 h = $0.3778/h.
        Assert.Equal(1.0451m, own.FixedPerGpuHour, 3);
        Assert.Equal(0.08m * 0.7m * 1.3m, own.VariablePerGpuHour);
    }

    [Fact]
    public void Of_EveryOption_CostAtFullUseIsHourlyCostOverThroughput()
    {
        var plan = CapacityPlanner.Plan(TestScenarios.Parse(TestScenarios.OnDemand + OwnedH100), new PlanOptions(false, false));

        var summary = PlanSummary.Of(plan);

        var od = summary.Options.Single(o => o.Name == "od");
        Assert.Equal("chat/m/interactive", od.ServedClass);
        Assert.Equal(3m / (decimal)od.OutputTokensPerGpuHour!.Value * 1_000_000m, od.CostPerMillionAtFullUse);
        var own = summary.Options.Single(o => o.Name == "own");
        Assert.True(own.CostPerMillionAtFullUse < od.CostPerMillionAtFullUse, "an owned H100 at full use is cheaper than renting one");
    }

    /// <summary>
    /// Batch work may be served in any hour of its day, so on-demand GPUs can peak far above what the work needs; the
    /// summary reports the mean in use beside the peak (GPU-hours used over the horizon's hours).
    /// </summary>
    [Fact]
    public void Of_BatchWorkOnDemand_ReportsMeanGpusInUseBesidePeak()
    {
        var workload = TestScenarios.Workload().Replace("latency_slo_ms_per_token: 50", "latency_slo_ms_per_token: 50\n    batch_share: 0.8", StringComparison.Ordinal);
        var plan = CapacityPlanner.Plan(TestScenarios.Parse(TestScenarios.OnDemand, workload), new PlanOptions(false, false));

        var od = PlanSummary.Of(plan).Portfolio.Single(o => o.Name == "od");

        var hours = Enumerable.Range(0, 3).Sum(plan.Scenario.HoursIn);
        var used = plan.Portfolio.Options.Single(o => o.Option.Name == "od").Months.Sum(m => m.GpuHoursUsed);
        Assert.Equal(used / hours, od.AverageGpusInUse, 9);
        Assert.True(od.AverageGpusInUse > 0 && od.AverageGpusInUse <= od.PeakGpus, $"mean {od.AverageGpusInUse}, peak {od.PeakGpus}");
    }
}
