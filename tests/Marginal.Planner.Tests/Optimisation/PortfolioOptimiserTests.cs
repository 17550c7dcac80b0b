using Marginal.Planner.Optimisation;
using Marginal.Planner.Projections;
using Marginal.Planner.Scenarios;
using Marginal.Planner.Tests.Scenarios;

namespace Marginal.Planner.Tests.Optimisation;

public sealed class PortfolioOptimiserTests
{
    private static (PlanInputs Inputs, Portfolio Portfolio, Projection Projection) Solve(Scenario scenario) => CapacityPlanner.Solve(scenario, PlanKnobs.None);

    private const string OnDemandAndSixteenOwned = TestScenarios.OnDemand + """
          own:
            kind: own
            accelerator: h100-sxm
            max_gpus: 16
            source: test
            as_of: "2026-11"
        """;

    private static OptionPlan Option(Portfolio portfolio, string name) => portfolio.Options.Single(o => o.Option.Name == name);

    private static void AssertServesDemand(PlanInputs inputs, Portfolio portfolio, int month)
    {
        var served = portfolio.Options.Sum(o => o.Months[month].OutputTokens);
        Assert.InRange(served, inputs.MonthlyOutputMillions[month] * 0.999999, inputs.MonthlyOutputMillions[month] * 1.000001);
    }

    [Fact]
    public void Optimise_EveryMonth_ServesAllDemand()
    {
        var scenario = TestScenarios.Parse(OnDemandAndSixteenOwned, TestScenarios.Workload(peaked: true));

        var (inputs, portfolio, _) = Solve(scenario);

        for (var m = 0; m < 3; m++)
        {
            AssertServesDemand(inputs, portfolio, m);
        }
    }

    [Fact]
    public void Optimise_Surge_ServedByBurstCapacity()
    {
        var scenario = TestScenarios.Parse(OnDemandAndSixteenOwned, TestScenarios.Workload("[{ month: 2, day: 5, hour: 10, hours: 3, multiplier: 5 }]"));

        var (inputs, portfolio, _) = Solve(scenario);

        var onDemand = Option(portfolio, "od");
        Assert.True(onDemand.Months[1].Gpus > 2 * Math.Max(onDemand.Months[0].Gpus, onDemand.Months[2].Gpus),
            $"peak on-demand GPUs by month: {string.Join(", ", onDemand.Months.Select(m => m.Gpus))}");
        Assert.True(inputs.MonthlyOutputMillions[1] > inputs.MonthlyOutputMillions[0], "the surge adds tokens to its month");
        AssertServesDemand(inputs, portfolio, 1);
    }

    [Fact]
    public void Optimise_SupplierCap_HoldsEveryMonth()
    {
        var scenario = TestScenarios.Parse("""
              cheap:
                kind: on_demand
                accelerator: h100-sxm
                supplier: a
                price_per_gpu_hour: 1
                source: test
                as_of: "2026-11"
              dear:
                kind: on_demand
                accelerator: h100-sxm
                supplier: b
                price_per_gpu_hour: 3
                source: test
                as_of: "2026-11"
            """, extra: "supplier_caps:\n  a: 0.4\n");

        var (inputs, portfolio, _) = Solve(scenario);

        for (var m = 0; m < 3; m++)
        {
            var share = Option(portfolio, "cheap").Months[m].OutputTokens / inputs.MonthlyOutputMillions[m];
            Assert.InRange(share, 0.4 - 1e-6, 0.4 + 1e-6); // cheapest, so the cap binds
        }
    }

    [Fact]
    public void Optimise_TakeOrPay_PaysTheFloorWhenIdle()
    {
        var scenario = TestScenarios.Parse(TestScenarios.OnDemand + """
              reserved:
                kind: reserved
                accelerator: h100-sxm
                price_per_gpu_hour: 1.5
                term_months: 3
                take_or_pay: 0.8
                source: test
                as_of: "2026-11"
            """, TestScenarios.Workload(peaked: true));

        var (_, portfolio, _) = Solve(scenario);

        var reserved = Option(portfolio, "reserved");
        Assert.True(reserved.Months[0].Gpus > 0, "a reserved GPU at half the on-demand price is worth contracting");
        for (var m = 0; m < 3; m++)
        {
            var month = reserved.Months[m];
            var floorHours = 0.8 * month.GpuHoursAvailable;
            Assert.Equal((decimal)floorHours * 1.5m, month.FixedCost, 2);
            Assert.Equal((decimal)Math.Max(0, month.GpuHoursUsed - floorHours) * 1.5m, month.VariableCost, 2);
        }
    }

    [Fact]
    public void Optimise_DealWithMinimumSize_NoneOrAtLeastTheMinimum()
    {
        var scenario = TestScenarios.Parse(TestScenarios.OnDemand + """
              deal:
                kind: reserved
                accelerator: h100-sxm
                price_per_gpu_hour: 2
                term_months: 3
                min_gpus: 200
                source: test
                as_of: "2026-11"
            """);

        var (_, portfolio, _) = Solve(scenario);

        var gpus = Option(portfolio, "deal").Months[0].Gpus;
        Assert.True(gpus == 0 || gpus >= 200, $"deal level {gpus}");
        Assert.Equal(0, gpus); // 200 GPUs at 80% idle cost more than renting ~30 on demand
    }

    [Fact]
    public void Optimise_LeadTime_NoOwnedCapacityBeforeArrival()
    {
        var scenario = TestScenarios.Parse(TestScenarios.OnDemand + """
              own:
                kind: own
                accelerator: h100-sxm
                lead_time_months: 2
                source: test
                as_of: "2026-11"
            """);

        var (_, portfolio, _) = Solve(scenario);

        var own = Option(portfolio, "own");
        Assert.Equal(0, own.Months[0].Gpus);
        Assert.Equal(0, own.Months[1].OutputTokens);
        Assert.True(Option(portfolio, "od").Months[0].OutputTokens > 0);
    }

    [Fact]
    public void Optimise_CapexBudget_Holds()
    {
        var scenario = ScenarioLoader.Parse(TestScenarios.Header.Replace("horizon_months: 3", "horizon_months: 24", StringComparison.Ordinal)
            + "\n" + TestScenarios.Workload() + "\nsupply:\n" + TestScenarios.OnDemand + """
              own:
                kind: own
                accelerator: h100-sxm
                gpus_per_node: 1
                source: test
                as_of: "2026-11"
            finance:
              capex_budget: 200000
            """, "test.yaml");

        var (_, portfolio, projection) = Solve(scenario);

        Assert.True(projection.TotalCapex <= 200_000m, $"capex {projection.TotalCapex}");
        Assert.True(projection.TotalCapex > 0, "owning pays over 24 months, so the budget is used");
        Assert.Contains(portfolio.ShadowPrices, s => s.Name == "capex budget" && s.Value > 0);
    }

    [Fact]
    public void Optimise_NothingCanServeTheDemand_OneLineScenarioProblem()
    {
        var scenario = TestScenarios.Parse("""
              own:
                kind: own
                accelerator: h100-sxm
                max_gpus: 8
                source: test
                as_of: "2026-11"
            """);

        var ex = Assert.Throws<ScenarioException>(() => Solve(scenario));

        var line = Assert.Single(ex.Problems);
        Assert.StartsWith("test.yaml: supply: the options cannot serve the demand", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Project_JointVentureOffBalanceSheet_GuaranteeInEconomicDebtOnly()
    {
        var scenario = TestScenarios.Parse(TestScenarios.OnDemand + """
              jv:
                kind: joint_venture
                accelerator: h100-sxm
                facility_gpus: 400
                share: 0.3
                facility_capex: 400000
                facility_opex_per_month: 10000
                guarantee: 1000000
                off_balance_sheet: true
                source: test
                as_of: "2026-11"
            """);

        var (_, portfolio, projection) = Solve(scenario);

        var jv = Option(portfolio, "jv");
        Assert.Equal(120, jv.Months[0].Gpus, 6); // 30% of 400: cheap enough to take
        var sheet = projection.Months[0].BalanceSheet;
        Assert.Equal(0m, sheet.Equipment);
        Assert.True(sheet.JointVentureInvestment > 0);
        Assert.Equal(1_000_000m, sheet.Guarantees);
        Assert.Equal(sheet.BalanceSheetDebt + 1_000_000m, sheet.EconomicDebt);
    }

    [Fact]
    public void Build_HourlyYear_8760Periods()
    {
        var scenario = ScenarioLoader.Parse(TestScenarios.Header.Replace("horizon_months: 3", "horizon_months: 12\nresolution: hourly", StringComparison.Ordinal)
            + "\n" + TestScenarios.Workload() + "\nsupply:\n" + TestScenarios.OnDemand, "test.yaml");

        var inputs = PlanInputs.Build(scenario, PlanKnobs.None);

        Assert.Equal(8760, inputs.Periods.Count); // 2027 is not a leap year
        Assert.Equal(365, inputs.Periods.Select(p => p.Group).Distinct().Count());
    }

    [Fact]
    public void DurationCurve_HourlyMonth_KeepsTokensHoursAndPeak()
    {
        var scenario = ScenarioLoader.Parse(TestScenarios.Header.Replace("horizon_months: 3", "horizon_months: 2\nresolution: hourly", StringComparison.Ordinal)
            + "\n" + TestScenarios.Workload("[{ month: 1, day: 3, hour: 9, hours: 2, multiplier: 4 }]", peaked: true) + "\nsupply:\n" + TestScenarios.OnDemand, "test.yaml");
        var hourly = PlanInputs.Build(scenario, PlanKnobs.None);

        var blocks = hourly.DurationCurve(24);

        Assert.Equal(48, blocks.Periods.Count);
        Assert.Equal(hourly.Periods.Sum(p => p.Hours), blocks.Periods.Sum(p => p.Hours));
        Assert.Equal(hourly.Demand[0].Sum(), blocks.Demand[0].Sum(), 6);
        Assert.Equal(hourly.Demand[0].Max(), blocks.Demand[0][0], 9); // the surge hour is a block of its own
    }

    [Fact]
    public void Optimise_HourlyPlan_DispatchesEveryHourOnTheChosenPortfolio()
    {
        var scenario = ScenarioLoader.Parse(TestScenarios.Header.Replace("horizon_months: 3", "horizon_months: 3\nresolution: hourly", StringComparison.Ordinal)
            + "\n" + TestScenarios.Workload("[{ month: 2, day: 5, hour: 10, hours: 3, multiplier: 5 }]", peaked: true) + "\nsupply:\n" + OnDemandAndSixteenOwned, "test.yaml");

        var (inputs, portfolio, _) = Solve(scenario);

        Assert.True(inputs.Periods.Count > PortfolioOptimiser.DirectPeriods);
        Assert.Equal(16, Option(portfolio, "own").Months[2].Gpus);
        for (var m = 0; m < 3; m++)
        {
            AssertServesDemand(inputs, portfolio, m);
        }
    }
}
