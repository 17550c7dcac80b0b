using Marginal.Economics.Plans;
using static Marginal.Economics.Tests.Plans.Records;

namespace Marginal.Economics.Tests.Plans;

// Every expected figure is worked by hand in docs/economics.md, "Pricing plans: worked examples".
public sealed class PlanPricerTests
{
    private static readonly Dictionary<string, TokenPrice> ListPrices = new() { ["gpt-test"] = new TokenPrice(2m, 0.5m, 8m) };
    private static readonly Dictionary<string, TokenPrice> OneDollar = new() { ["gpt-test"] = new TokenPrice(1m, null, 1m) };

    private static readonly TierSchedule Bands = new(TierMode.Graduated, TierMeasure.Tokens,
        [new TierBand(1_000_000, 0m), new TierBand(2_000_000, 0.2m), new TierBand(null, 0.5m)]);

    [Fact]
    public void Price_ListPrices_ChargesInputCachedAndOutput()
    {
        var plan = new PricingPlan("list", ListPrices);

        var charge = PlanPricer.Price(plan, Usage(1_000_000, 100_000, cached: 200_000), default);

        Assert.Equal(2.5m, charge.RevenueUsd);
    }

    [Fact]
    public void Price_MarkupWithoutListPrice_ChargesCostPlusMarkup()
    {
        var plan = new PricingPlan("markup", new Dictionary<string, TokenPrice>(), Markup: 0.25m);

        Assert.Equal(2.5m, PlanPricer.Price(plan, Usage(1000, cost: 2m), default).RevenueUsd);
    }

    [Fact]
    public void Price_GraduatedCrossingABand_DiscountsOnlyThePartAbove()
    {
        var plan = new PricingPlan("graduated", OneDollar, Tiers: Bands);

        var charge = PlanPricer.Price(plan, Usage(200_000), new MonthToDate(900_000, 0.9m));

        Assert.Equal(0.02m, charge.TierUsd);
        Assert.Equal(0.18m, charge.RevenueUsd);
    }

    [Fact]
    public void Price_GraduatedEndingExactlyAtTheEdge_StaysInTheLowerBand()
    {
        var plan = new PricingPlan("graduated", OneDollar, Tiers: Bands);

        Assert.Equal(0.2m, PlanPricer.Price(plan, Usage(200_000), new MonthToDate(800_000, 0.8m)).RevenueUsd);
        Assert.Equal(0.08m, PlanPricer.Price(plan, Usage(100_000), new MonthToDate(1_000_000, 1m)).RevenueUsd);
    }

    [Fact]
    public void BandOf_TotalExactlyAtUpTo_IsInThatBand()
    {
        Assert.Equal(0, Bands.BandOf(1_000_000));
        Assert.Equal(1, Bands.BandOf(1_000_001));
    }

    [Fact]
    public void Price_Package_ChargesEachStartedBlockOnce()
    {
        var plan = new PricingPlan("package", OneDollar, Package: new PackagePrice(1_000_000, 8m));

        var first = PlanPricer.Price(plan, Usage(600_000), default);
        var second = PlanPricer.Price(plan, Usage(600_000), new MonthToDate(600_000, 0.6m));
        var third = PlanPricer.Price(plan, Usage(400_000), new MonthToDate(1_200_000, 1.2m));

        Assert.Equal((8m, 8m, 0m), (first.RevenueUsd, second.RevenueUsd, third.RevenueUsd));
    }

    [Fact]
    public void Price_FreeAllowanceThenBill_WaivesTheShareInsideTheAllowance()
    {
        var plan = new PricingPlan("free-then-bill", OneDollar, Free: new FreeTier(1_000_000, null, FreeTierAfter.Bill, null));

        var charge = PlanPricer.Price(plan, Usage(200_000), new MonthToDate(900_000, 0.9m));

        Assert.Equal(0.1m, charge.FreeUsd);
        Assert.Equal(0.1m, charge.RevenueUsd);
    }

    [Fact]
    public void UsedUp_FreeAllowanceReachedExactly_IsUsedUp()
    {
        var free = new FreeTier(1_000_000, null, FreeTierAfter.Refuse, null);

        Assert.False(free.UsedUp(new MonthToDate(999_999, 0)));
        Assert.True(free.UsedUp(new MonthToDate(1_000_000, 0)));
    }

    [Fact]
    public void Price_FreePlanThatRefuses_BillsNothing()
    {
        var plan = new PricingPlan("free", OneDollar, Free: new FreeTier(1_000_000, null, FreeTierAfter.Refuse, null));

        Assert.Equal(0m, PlanPricer.Price(plan, Usage(500_000), default).RevenueUsd);
    }

    [Fact]
    public void Price_EnterpriseDiscount_TakesItsShareOffEverything()
    {
        var plan = new PricingPlan("enterprise", ListPrices, Discount: 0.15m);

        var charge = PlanPricer.Price(plan, Usage(1_000_000, 100_000, cached: 200_000), default);

        Assert.Equal(0.375m, charge.DiscountUsd);
        Assert.Equal(2.125m, charge.RevenueUsd);
    }

    [Fact]
    public void Price_PremiumRouteAndTaggedOutcome_AddTheirPrices()
    {
        var plan = new PricingPlan("value", OneDollar,
            Outcomes: new Dictionary<string, decimal> { ["ticket_resolved"] = 0.5m },
            Surcharges: new Dictionary<string, decimal> { ["auto:quality"] = 0.002m });

        var charge = PlanPricer.Price(plan, Usage(1000, requested: "auto:quality", tags: "ticket_resolved"), default);

        Assert.Equal(0.002m, charge.SurchargeUsd);
        Assert.Equal(0.5m, charge.OutcomeUsd);
        Assert.Equal(0.503m, charge.RevenueUsd);
    }

    [Fact]
    public void OutcomeRevenue_PricedOutcomeUnderDiscount_IsPriceLessDiscount()
    {
        var plan = new PricingPlan("value", OneDollar, Discount: 0.1m, Outcomes: new Dictionary<string, decimal> { ["ticket_resolved"] = 0.5m });

        Assert.Equal(0.45m, PlanPricer.OutcomeRevenue(plan, "ticket_resolved"));
        Assert.Null(PlanPricer.OutcomeRevenue(plan, "other"));
    }
}
