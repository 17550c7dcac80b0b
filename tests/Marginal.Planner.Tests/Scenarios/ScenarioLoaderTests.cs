using Marginal.Planner.Hardware;
using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Tests.Scenarios;

public sealed class ScenarioLoaderTests
{
    private static ScenarioException Problems(string yaml) => Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(yaml, "bad.yaml"));

    [Fact]
    public void Parse_UnknownKey_OneLineWithPositionAndAllowedKeys()
    {
        var ex = Problems(TestScenarios.Header + "\nsupply:\n  od:\n    kind: on_demand\n    price_per_hour: 2\n");

        var line = Assert.Single(ex.Problems);
        Assert.StartsWith("bad.yaml:9:5: unknown key 'price_per_hour' in a supply option (allowed: kind, supplier, accelerator,", line, StringComparison.Ordinal);
        Assert.Contains("price_per_gpu_hour", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SeveralProblems_OneLinePerProblemNamingFileAndPath()
    {
        var ex = Problems(TestScenarios.Header + """

            workloads:
              chat: { model: gpt-9, output_tokens_per_month: 1000, batch_share: 1.5 }
            supply:
              cloud: { kind: rent, source: x, as_of: "2026" }
              od: { kind: on_demand, accelerator: h100-sxm, price_per_gpu_hour: 2 }
            """);

        Assert.Equal(
            [
                "bad.yaml: workloads.chat.model: 'gpt-9' is not defined under models (defined: m)",
                "bad.yaml: workloads.chat.batch_share: 1.5 is out of range (allowed: 0 to 1)",
                "bad.yaml: supply.cloud.kind: 'rent' is not allowed (allowed: own, reserved, on_demand, spot, api, joint_venture)",
                "bad.yaml: supply.od.source: every supply option needs source (where its prices come from, or 'assumption: why') and as_of (YYYY, YYYY-MM or YYYY-MM-DD)",
            ],
            ex.Problems);
        Assert.Equal(string.Join(Environment.NewLine, ex.Problems), ex.Message);
    }

    [Fact]
    public void Parse_OwnRentOnlyAccelerator_NamesCapexPerGpu()
    {
        var ex = Problems(TestScenarios.Header + "\n" + TestScenarios.Workload() + """
            supply:
              tpus: { kind: own, accelerator: tpu-v6e, source: x, as_of: "2026-11" }
            """);

        var line = Assert.Single(ex.Problems);
        Assert.Equal("bad.yaml: supply.tpus.capex_per_gpu: 'tpu-v6e' has no purchase price in the catalogue (it is rented only); set capex_per_gpu or choose another accelerator", line);
    }

    [Fact]
    public void Parse_UnknownAccelerator_ListsTheCatalogue()
    {
        var ex = Problems(TestScenarios.Header + "\n" + TestScenarios.Workload() + """
            supply:
              od: { kind: on_demand, accelerator: a100, price_per_gpu_hour: 2, source: x, as_of: "2026-11" }
            """);

        Assert.Equal("bad.yaml: supply.od.accelerator: 'a100' is not in the catalogue (allowed: h100-sxm, h200-sxm, b200, mi300x, tpu-v6e, trainium2)", Assert.Single(ex.Problems));
    }

    [Fact]
    public void Parse_SyntaxError_OneLineWithPosition()
    {
        var ex = Problems("name: [unclosed\n");

        Assert.StartsWith("bad.yaml:", Assert.Single(ex.Problems), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingFile_OneLineNamingIt()
    {
        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.Load("/nonexistent/plan.yaml"));

        Assert.StartsWith("/nonexistent/plan.yaml: cannot read the file", Assert.Single(ex.Problems), StringComparison.Ordinal);
    }

    [Fact]
    public void Shipped_Catalogue_SixAcceleratorsEachWithSourceAndDate()
    {
        var catalogue = AcceleratorCatalogue.Shipped;

        Assert.Equal(["h100-sxm", "h200-sxm", "b200", "mi300x", "tpu-v6e", "trainium2"], catalogue.Keys);
        Assert.All(catalogue.Values, a => Assert.True(ScenarioLoader.IsDate(a.SpecAsOf) && !string.IsNullOrWhiteSpace(a.SpecSource)));
        Assert.All(catalogue.Values.Where(a => a.PurchasePrice is not null), a => Assert.True(ScenarioLoader.IsDate(a.PriceAsOf) && !string.IsNullOrWhiteSpace(a.PriceSource)));
        Assert.Null(catalogue["tpu-v6e"].PurchasePrice);
        Assert.Null(catalogue["trainium2"].PurchasePrice);
    }

    public static TheoryData<string> Samples() => [.. Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "scenarios"), "*.yaml").Select(f => Path.GetFileName(f))];

    [Theory]
    [MemberData(nameof(Samples))]
    public void Plan_ShippedSample_PortfolioServesEveryMonth(string file)
    {
        var scenario = ScenarioLoader.Load(Path.Combine(AppContext.BaseDirectory, "scenarios", file));

        var plan = CapacityPlanner.Plan(scenario, new PlanOptions(FiniteDifferences: false, Tornado: false));

        Assert.Equal(scenario.Months, plan.Projection.Months.Count);
        Assert.True(plan.Projection.CostPerMillion > 0);
        for (var m = 0; m < scenario.Months; m++)
        {
            var served = plan.Portfolio.Options.Sum(o => o.Months[m].OutputTokens);
            Assert.InRange(served, plan.Inputs.MonthlyOutputMillions[m] * 0.999999, plan.Inputs.MonthlyOutputMillions[m] * 1.000001);
        }
    }
}
