using Marginal.Core.Billing;
using Marginal.Core.Ledger;
using Marginal.Economics.Invoices;
using Marginal.Economics.Reports.Formats;
using Marginal.Economics.Plans;
using static Marginal.Economics.Tests.Plans.Records;

namespace Marginal.Economics.Tests.Invoices;

// The enterprise month is worked by hand in docs/economics.md, "Invoices: a worked example".
public sealed class InvoiceBuilderTests
{
    private static readonly DateOnly Month = new(2026, 11, 1);
    private static readonly Dictionary<string, TokenPrice> OneDollar = new() { ["gpt-test"] = new TokenPrice(1m, null, 1m) };

    private static readonly PricingPlan Enterprise = new("enterprise", OneDollar, Discount: 0.1m, CommitmentUsd: 100m,
        Outcomes: new Dictionary<string, decimal> { ["ticket_resolved"] = 0.5m });

    private static List<UsageRecord> EnterpriseMonth() =>
    [
        Usage(30_000_000, 10_000_000, id: "req_a", cost: 12m, revenue: 36m),
        Usage(20_000_000, 0, id: "req_b", cost: 6m, revenue: 18m, time: November.AddDays(3)),
        new("req_a~outcome~ticket_resolved", November.AddDays(4), "acme", "key1", "gpt-test", "gpt-test", null, null, "ok", false, 0, 0, 0, 0, 0, "none", 0, null,
            null, null, 0.45m, null, null, "", null, 0, Kind: UsageRecordKinds.Outcome, Adjusts: "req_a", Tags: "ticket_resolved"),
        new("adj_1", November.AddDays(5), "acme", "key1", "gpt-test", "gpt-test", null, null, "ok", false, 0, 0, 0, 0, 0, "none", 0, null,
            null, null, -2m, null, null, "", null, 0, Kind: UsageRecordKinds.Adjustment, Adjusts: "req_b", Tags: "reason:slow answers"),
        // Another tenant and another month: not on this invoice.
        Usage(1_000_000, id: "req_other", tenant: "globex"),
        Usage(1_000_000, id: "req_december", time: new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero)),
    ];

    [Fact]
    public void Build_EnterpriseMonthBelowCommitment_TruesUpToTheCommitment()
    {
        var invoice = InvoiceBuilder.Build(Enterprise, "acme", Month, EnterpriseMonth(), []);

        // usage 60 + outcome 0.5 = 60.5; discount 6.05; 54.45 below the 100 commitment: true-up 45.55; adjustment −2.
        Assert.Equal(60.5m, invoice.SubtotalUsd);
        Assert.Equal(6.05m, invoice.DiscountUsd);
        Assert.Equal(45.55m, invoice.TrueUpUsd);
        Assert.Equal(98m, invoice.TotalUsd);
        Assert.Equal(80m, invoice.MarginUsd);
        Assert.Single(invoice.Adjustments);
    }

    [Fact]
    public void Build_OutcomeTaggedAndAlsoBookedFromFeedback_CountsOnce()
    {
        List<UsageRecord> records =
        [
            Usage(1_000_000, id: "req_tagged", tags: "ticket_resolved"),
            // What feedback booked before it checked the request's tags.
            new("req_tagged~outcome~ticket_resolved", November.AddDays(1), "acme", "key1", "gpt-test", "gpt-test", null, null, "ok", false, 0, 0, 0, 0, 0, "none", 0, null,
                null, null, 0.45m, null, null, "", null, 0, Kind: UsageRecordKinds.Outcome, Adjusts: "req_tagged", Tags: "ticket_resolved"),
        ];

        var invoice = InvoiceBuilder.Build(Enterprise, "acme", Month, records, []);

        Assert.Equal(1, Assert.Single(invoice.Outcomes).Count);
    }

    [Fact]
    public void Build_CallRepeatedForAnIdempotentRetry_CostsButShowsNoAdjustmentLine()
    {
        List<UsageRecord> records =
        [
            Usage(1_000_000, id: "acme:order-1", cost: 1m),
            Usage(1_000_000, id: "acme:order-1~repeat~1", cost: 1m, tags: InvoiceBuilder.RepeatReason) with { Kind = UsageRecordKinds.Adjustment, Adjusts = "acme:order-1" },
        ];

        var invoice = InvoiceBuilder.Build(Enterprise, "acme", Month, records, []);

        Assert.Empty(invoice.Adjustments);
        Assert.Equal(2m, invoice.CostUsd);
        Assert.Equal(1, Assert.Single(invoice.Models).Requests);
    }

    [Fact]
    public void Build_CreditsBurnedInTheMonth_AreAppliedAgainstTheTotal()
    {
        var grants = new[] { new CreditGrant("cr_1", "acme", 40m, November.AddDays(-40), null) };

        var invoice = InvoiceBuilder.Build(Enterprise, "acme", Month, EnterpriseMonth(), grants);

        // The ledger burned 36 (req_a) then 4 of req_b's 18 before the 40 ran out.
        Assert.Equal(40m, invoice.CreditsAppliedUsd);
        Assert.Equal(58m, invoice.AmountDueUsd);
    }

    [Fact]
    public void Build_VolumeTiers_PriceTheWholeMonthAtTheBandItEndsIn()
    {
        var plan = new PricingPlan("volume", OneDollar, Tiers: new TierSchedule(TierMode.Volume, TierMeasure.Tokens,
            [new TierBand(1_000_000, 0m), new TierBand(null, 0.2m)]));

        var above = InvoiceBuilder.Build(plan, "acme", Month, [Usage(1_000_000), Usage(500_000, time: November.AddDays(1))], []);
        var atEdge = InvoiceBuilder.Build(plan, "acme", Month, [Usage(600_000), Usage(400_000, time: November.AddDays(1))], []);

        Assert.Equal(1.2m, above.TotalUsd);
        Assert.Equal(1m, atEdge.TotalUsd);
    }

    [Fact]
    public void Build_MonthCloseAdjustment_IsLeftOffTheInvoice()
    {
        var records = EnterpriseMonth();
        var closeId = InvoiceBuilder.MonthCloseId("acme", "2026-11");
        records.Add(new(closeId, November.AddDays(27), "acme", "none", "", null, null, null, "ok", false, 0, 0, 0, 0, 0, "none", 0, null, null, null, 45.55m,
            null, null, "", null, 0, Kind: UsageRecordKinds.Adjustment, Adjusts: closeId));

        Assert.Equal(98m, InvoiceBuilder.Build(Enterprise, "acme", Month, records, []).TotalUsd);
    }

    [Fact]
    public void WriteCsv_NamesStartingWithFormulaCharacters_AreNeutralisedAndAmountsStayNumbers()
    {
        List<UsageRecord> records =
        [
            Usage(1_000_000, model: "=cmd|' /C calc'!A0", id: "req_a"),
            new("@adj", November.AddDays(5), "acme", "key1", "gpt-test", "gpt-test", null, null, "ok", false, 0, 0, 0, 0, 0, "none", 0, null,
                null, null, -2m, null, null, "", null, 0, Kind: UsageRecordKinds.Adjustment, Adjusts: "req_a", Tags: "reason:-refund"),
        ];

        var csv = InvoiceFormats.Write(InvoiceBuilder.Build(Enterprise, "acme", Month, records, []), "csv");

        var items = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(line => line.Split(',')).ToList();
        Assert.Contains(items, cells => cells[0] == "usage" && cells[1] == "'=cmd|' /C calc'!A0");
        Assert.Contains(items, cells => cells[0] == "adjustment" && cells[1] == "'@adj -refund" && cells[^1] == "-2.000000");
        // A negative amount is a number, not a formula: the discount row keeps its minus sign.
        Assert.Contains(items, cells => cells[0] == "discount" && cells[^1].StartsWith('-'));
    }

    [Theory]
    [InlineData("md")]
    [InlineData("json")]
    [InlineData("csv")]
    public void Write_SameLedgerInAnyOrder_GivesIdenticalBytes(string format)
    {
        var records = EnterpriseMonth();
        var shuffled = records.AsEnumerable().Reverse().ToList();

        var first = InvoiceFormats.Write(InvoiceBuilder.Build(Enterprise, "acme", Month, records, []), format);
        var second = InvoiceFormats.Write(InvoiceBuilder.Build(Enterprise, "acme", Month, shuffled, []), format);

        Assert.Equal(first, second);
        Assert.Contains("98.000000", first, StringComparison.Ordinal);
    }
}
