using Marginal.Core.Billing;
using Marginal.Core.Ledger;
using Marginal.Economics.Plans;

namespace Marginal.Economics.Invoices;

/// <summary>One model's usage on an invoice: tokens, list charge, what the free allowance and tiers took off, net.</summary>
public sealed record InvoiceModelLine(string Model, long Requests, long InputTokens, long CachedInputTokens, long OutputTokens,
    decimal ListUsd, decimal FreeUsd, decimal TierUsd, decimal UsageUsd, decimal CostUsd);

/// <summary>A priced feature or outcome: how many, at what unit price, for how much.</summary>
public sealed record InvoiceItemLine(string Name, long Count, decimal UnitUsd, decimal Usd);

/// <summary>A correction booked in the ledger (an <c>adjustment</c> record).</summary>
public sealed record InvoiceAdjustmentLine(string Id, string? Adjusts, string Reason, decimal Usd);

/// <summary>
/// A month's bill for one tenant, computed from the ledger alone (docs/economics.md, "Invoices"):
/// <code>
/// subtotal  = Σ usage + package + Σ surcharges + Σ outcomes
/// total     = subtotal − discount + true-up + Σ adjustments       (true-up = max(0, commitment − (subtotal − discount)))
/// due       = total − credits applied
/// </code>
/// </summary>
public sealed record Invoice(
    string Tenant,
    string Month,
    string Plan,
    IReadOnlyList<InvoiceModelLine> Models,
    string? TierSummary,
    InvoiceItemLine? Package,
    IReadOnlyList<InvoiceItemLine> Surcharges,
    IReadOnlyList<InvoiceItemLine> Outcomes,
    decimal SubtotalUsd,
    decimal DiscountRate,
    decimal DiscountUsd,
    decimal CommitmentUsd,
    decimal TrueUpUsd,
    IReadOnlyList<InvoiceAdjustmentLine> Adjustments,
    decimal TotalUsd,
    decimal CreditsAppliedUsd,
    decimal AmountDueUsd,
    decimal CostUsd)
{
    /// <summary>Total less the fully loaded cost of serving the month.</summary>
    public decimal MarginUsd => TotalUsd - CostUsd;
}

/// <summary>Builds invoices from ledger records. Pure: the same plan, records and grants give the same invoice.</summary>
public static class InvoiceBuilder
{
    /// <summary>The <c>Adjusts</c> prefix of the record that books a month's invoice-minus-ledger difference; never on an invoice.</summary>
    public const string MonthClosePrefix = "month:";

    /// <summary>The reason tag of an upstream call repeated for an idempotent retry (recorded for its cost, billed once).</summary>
    public const string RepeatReason = "reason:repeat";

    /// <summary>The id a month-close adjustment is booked under (one per tenant and month, so closing twice books once).</summary>
    public static string MonthCloseId(string tenant, string month) => $"{MonthClosePrefix}{tenant}:{month}";

    /// <summary>
    /// The invoice of <paramref name="tenant"/> for <paramref name="month"/> (UTC, first day at 00:00). <paramref name="records"/>
    /// are the tenant's records from the earliest credit grant (or the month's start) to the month's end; those before the
    /// month only burn credit.
    /// </summary>
    public static Invoice Build(PricingPlan plan, string tenant, DateOnly month, IEnumerable<UsageRecord> records, IEnumerable<CreditGrant> grants)
    {
        var start = new DateTimeOffset(month.Year, month.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var end = start.AddMonths(1);
        var all = records.Where(r => r.Tenant == tenant && r.Time < end).OrderBy(r => r.Time).ThenBy(r => r.Id, StringComparer.Ordinal).ToList();
        var inMonth = all.Where(r => r.Time >= start).ToList();
        var usage = inMonth.Where(r => r.Kind == UsageRecordKinds.Usage).ToList();

        // Volume tiers price the whole month at the band its total ends in, so the total comes first.
        var month0 = new MonthToDate(0, 0);
        var total = month0;
        foreach (var r in usage)
        {
            total = total.Add(PlanPricer.TokensOf(r), PlanPricer.ListCharge(plan, r));
        }
        int? volumeBand = plan.Tiers is { Mode: TierMode.Volume } v ? v.BandOf(v.By == TierMeasure.Tokens ? total.Tokens : total.ListUsd) : null;

        var models = new SortedDictionary<string, InvoiceModelLine>(StringComparer.Ordinal);
        var surcharges = new SortedDictionary<string, InvoiceItemLine>(StringComparer.Ordinal);
        var outcomes = new SortedDictionary<string, InvoiceItemLine>(StringComparer.Ordinal);
        var running = month0;
        decimal packageUsd = 0;
        foreach (var r in usage)
        {
            var charge = PlanPricer.Price(plan, r, running, volumeBand);
            running = running.Add(PlanPricer.TokensOf(r), charge.ListUsd);
            packageUsd += charge.PackageUsd;
            var model = r.ServedModel ?? r.RequestedModel;
            models[model] = models.TryGetValue(model, out var line)
                ? line with
                {
                    Requests = line.Requests + 1, InputTokens = line.InputTokens + r.InputTokens, CachedInputTokens = line.CachedInputTokens + r.CachedInputTokens,
                    OutputTokens = line.OutputTokens + r.OutputTokens, ListUsd = line.ListUsd + charge.ListUsd, FreeUsd = line.FreeUsd + charge.FreeUsd,
                    TierUsd = line.TierUsd + charge.TierUsd, UsageUsd = line.UsageUsd + charge.UsageUsd, CostUsd = line.CostUsd + (r.CostUsd ?? 0),
                }
                : new InvoiceModelLine(model, 1, r.InputTokens, r.CachedInputTokens, r.OutputTokens, charge.ListUsd, charge.FreeUsd, charge.TierUsd, charge.UsageUsd, r.CostUsd ?? 0);
            if (r.Status == "ok")
            {
                if (plan.Surcharges.TryGetValue(r.RequestedModel, out var routePrice))
                {
                    Count(surcharges, r.RequestedModel, routePrice);
                }
                foreach (var tag in PlanPricer.Tags(r.Tags))
                {
                    if (tag != r.RequestedModel && plan.Surcharges.TryGetValue(tag, out var tagPrice))
                    {
                        Count(surcharges, tag, tagPrice);
                    }
                    if (plan.Outcomes.TryGetValue(tag, out var outcomePrice))
                    {
                        Count(outcomes, tag, outcomePrice);
                    }
                }
            }
        }
        // One request's outcome counts once: an outcome record for an outcome its request was already billed for as a
        // tag (booked before feedback checked for that) is not counted again.
        var requests = all.Where(r => r.Kind == UsageRecordKinds.Usage).DistinctBy(r => r.Id, StringComparer.Ordinal).ToDictionary(r => r.Id, StringComparer.Ordinal);
        foreach (var r in inMonth.Where(r => r.Kind == UsageRecordKinds.Outcome))
        {
            var name = r.Tags;
            var billedAsTag = r.Adjusts is { } id && requests.TryGetValue(id, out var request) && PlanPricer.BilledAsTag(request, name);
            if (!billedAsTag && plan.Outcomes.TryGetValue(name, out var price))
            {
                Count(outcomes, name, price);
            }
        }
        // A call repeated for an idempotent retry is on the books for its cost only: nothing to show the customer.
        var adjustments = inMonth
            .Where(r => r.Kind == UsageRecordKinds.Adjustment && !(r.Adjusts ?? "").StartsWith(MonthClosePrefix, StringComparison.Ordinal)
                && !PlanPricer.Tags(r.Tags).Contains(RepeatReason, StringComparer.Ordinal))
            .Select(r => new InvoiceAdjustmentLine(r.Id, r.Adjusts, ReasonOf(r), r.RevenueUsd ?? 0))
            .ToList();

        InvoiceItemLine? package = plan.Package is { } pack
            ? new InvoiceItemLine($"{pack.Tokens} tokens", PlanPricer.Blocks(pack, total.Tokens - (plan.Free?.Tokens ?? 0)), pack.Usd, packageUsd)
            : null;
        var subtotal = models.Values.Sum(m => m.UsageUsd) + packageUsd + surcharges.Values.Sum(s => s.Usd) + outcomes.Values.Sum(o => o.Usd);
        var discount = subtotal * plan.Discount;
        var trueUp = Math.Max(0m, plan.CommitmentUsd - (subtotal - discount));
        var invoiceTotal = subtotal - discount + trueUp + adjustments.Sum(a => a.Usd);
        var credits = Math.Min(Math.Max(0m, invoiceTotal), CreditsBurned(all, grants, tenant, start));
        var cost = models.Values.Sum(m => m.CostUsd) + inMonth.Where(r => r.Kind == UsageRecordKinds.Adjustment).Sum(r => r.CostUsd ?? 0);
        return new Invoice(tenant, $"{month.Year:D4}-{month.Month:D2}", plan.Name, [.. models.Values], TierSummaryOf(plan.Tiers, total, volumeBand), package,
            [.. surcharges.Values], [.. outcomes.Values], subtotal, plan.Discount, discount, plan.CommitmentUsd, trueUp, adjustments, invoiceTotal,
            credits, invoiceTotal - credits, cost);
    }

    /// <summary>The reason an adjustment record carries (its <c>adjustment:</c> tag).</summary>
    public static string ReasonOf(UsageRecord record) =>
        PlanPricer.Tags(record.Tags).FirstOrDefault(t => t.StartsWith("reason:", StringComparison.Ordinal))?["reason:".Length..] ?? "";

    // What the gateway burned from credit during the month: the ledger's per-record revenue replayed through the wallet
    // in time order from the first grant, so the figure is the one requests were admitted against.
    private static decimal CreditsBurned(List<UsageRecord> records, IEnumerable<CreditGrant> grants, string tenant, DateTimeOffset start)
    {
        var wallet = new CreditWallet();
        foreach (var grant in grants.Where(g => g.Tenant == tenant))
        {
            wallet.Add(grant);
        }
        if (wallet.Count == 0)
        {
            return 0m;
        }
        decimal burned = 0;
        foreach (var r in records)
        {
            if (r.RevenueUsd is > 0 && !(r.Adjusts ?? "").StartsWith(MonthClosePrefix, StringComparison.Ordinal))
            {
                var covered = wallet.Burn(r.Time, r.RevenueUsd.Value);
                burned += r.Time >= start ? covered : 0;
            }
        }
        return burned;
    }

    private static void Count(SortedDictionary<string, InvoiceItemLine> lines, string name, decimal price) =>
        lines[name] = lines.TryGetValue(name, out var line) ? line with { Count = line.Count + 1, Usd = line.Usd + price } : new InvoiceItemLine(name, 1, price, price);

    private static string? TierSummaryOf(TierSchedule? tiers, MonthToDate total, int? volumeBand)
    {
        if (tiers is null)
        {
            return null;
        }
        var units = tiers.By == TierMeasure.Tokens ? FormattableString.Invariant($"{total.Tokens} tokens") : FormattableString.Invariant($"{total.ListUsd:0.######} USD list");
        var band = volumeBand ?? tiers.BandOf(tiers.By == TierMeasure.Tokens ? total.Tokens : total.ListUsd);
        return tiers.Mode == TierMode.Volume
            ? FormattableString.Invariant($"volume by {tiers.By.ToString().ToLowerInvariant()}: {units} in band {band + 1} ({tiers.Bands[band].Discount * 100:0.##}% off every unit)")
            : FormattableString.Invariant($"graduated by {tiers.By.ToString().ToLowerInvariant()}: {units}, reaching band {band + 1} of {tiers.Bands.Count}");
    }
}
