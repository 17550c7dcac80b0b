using Marginal.Economics.Plans;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Configuration;

namespace Marginal.Server.Tests.Billing;

public sealed class PlansFileTests
{
    [Fact]
    public void Parse_SeveralProblems_OneLineEachNamingFileAndField()
    {
        const string Yaml = """
            plans:
              pro:
                discount: 1.5
                tiers:
                  mode: stepped
                  by: tokens
                  bands:
                    - { up_to: 1000, discount: 0 }
                    - { up_to: 500, discount: 0.1 }
                    - { discount: 0.2 }
                free: { tokens: 10, usd: 5, after: downgrade, model: nope }
            tenants:
              acme: { plan: gold, budget: { daily_usd: -1 } }
            """;

        var error = Assert.Throws<ConfigException>(() => PlansLoader.Parse(Yaml, "plans.yaml", ["gpt-test"]));

        var lines = error.Message.Split(Environment.NewLine);
        Assert.All(lines, l => Assert.StartsWith("plans.yaml: ", l, StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("plans.yaml: plans.pro.discount: must be a fraction in [0, 1)", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("plans.yaml: plans.pro.tiers.mode: 'stepped' is not allowed (allowed: graduated, volume)", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("plans.yaml: plans.pro.tiers.bands[1].up_to: must be above the previous band's up_to (1000)", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("plans.yaml: plans.pro.free: give exactly one of tokens", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("plans.yaml: plans.pro.free.model: 'nope' must name a model", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("plans.yaml: tenants.acme.plan: 'gold' is not a plan in this file (defined: pro)", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("plans.yaml: tenants.acme.budget.daily_usd: must be above 0", StringComparison.Ordinal));
        Assert.Equal(7, lines.Length);
    }

    [Fact]
    public void Parse_UnknownKey_NamesTheKeysAllowed()
    {
        var error = Assert.Throws<ConfigException>(() => PlansLoader.Parse("plans:\n  pro:\n    markups: 0.2\n", "plans.yaml"));

        Assert.StartsWith("plans.yaml:3:5: unknown key 'markups' in a plan (allowed: prices, markup,", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SamplePlansFile_LoadsEveryPlanType()
    {
        var billing = PlansLoader.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "plans.yaml")), "plans.yaml");

        Assert.Equal(TierMode.Graduated, billing.Plans["growth"].Tiers!.Mode);
        Assert.True(billing.Plans["prepaid"].Prepaid);
        Assert.Equal(FreeTierAfter.Refuse, billing.PlanOf("hobbyist").Free!.After);
        Assert.Equal(0.15m, billing.PlanOf("bigco").Discount);
        Assert.Equal("starter", billing.PlanOf("someone-else").Name);
    }
}
