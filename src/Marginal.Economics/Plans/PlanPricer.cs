using Marginal.Core.Ledger;

namespace Marginal.Economics.Plans;

/// <summary>
/// What one ledger record is charged under a plan, in parts (docs/economics.md, "Pricing plans"):
/// <code>
/// usage    = list − free − tier          (0 on a package plan)
/// revenue  = (usage + package + surcharge + outcome) × (1 − discount)
/// </code>
/// </summary>
public readonly record struct RecordCharge(
    decimal ListUsd,
    decimal FreeUsd,
    decimal TierUsd,
    decimal UsageUsd,
    decimal PackageUsd,
    decimal SurchargeUsd,
    decimal OutcomeUsd,
    decimal DiscountUsd)
{
    public decimal RevenueUsd => UsageUsd + PackageUsd + SurchargeUsd + OutcomeUsd - DiscountUsd;
}

/// <summary>
/// Prices ledger records under a <see cref="PricingPlan"/>. Pure and thread-safe: the same plan, record and month-to-date
/// give the same charge. The caller carries the month-to-date from one record to the next, in time order.
/// </summary>
public static class PlanPricer
{
    private const decimal TokensPerMillion = 1_000_000m;

    /// <summary>
    /// The list charge of a usage record before tiers, free allowance and discount: the served model's list price (else the
    /// requested model's), else cost × (1 + markup). Cache writes are billed as input.
    /// </summary>
    public static decimal ListCharge(PricingPlan plan, UsageRecord record)
    {
        if ((record.ServedModel is { } served && plan.Prices.TryGetValue(served, out var price))
            || plan.Prices.TryGetValue(record.RequestedModel, out price))
        {
            var uncached = Math.Max(0, record.InputTokens - record.CachedInputTokens);
            return (uncached * price.Input + record.CachedInputTokens * (price.CachedInput ?? price.Input) + record.OutputTokens * price.Output) / TokensPerMillion;
        }
        return (record.CostUsd ?? 0m) * (1m + plan.Markup);
    }

    /// <summary>The tokens a record adds to the month: input plus output.</summary>
    public static long TokensOf(UsageRecord record) => record.InputTokens + record.OutputTokens;

    /// <summary>
    /// The charge of usage record <paramref name="record"/> given the month so far <paramref name="before"/>.
    /// <paramref name="volumeBand"/>, when given, is the volume band the whole month ends in (the invoice knows it);
    /// without it a volume plan uses the band the month is in after this record.
    /// </summary>
    public static RecordCharge Price(PricingPlan plan, UsageRecord record, MonthToDate before, int? volumeBand = null)
    {
        var list = ListCharge(plan, record);
        var tokens = TokensOf(record);
        var free = FreeShare(plan.Free, list, tokens, before);
        var tier = plan.Tiers is { } tiers ? TierDiscount(tiers, list - free, tiers.By == TierMeasure.Tokens ? tokens : list, Position(tiers, before), volumeBand) : 0m;
        decimal usage = 0, package = 0;
        if (plan.Package is { } pack)
        {
            var allowance = plan.Free?.Tokens ?? 0;
            package = (Blocks(pack, before.Tokens + tokens - allowance) - Blocks(pack, before.Tokens - allowance)) * pack.Usd;
        }
        else
        {
            usage = list - free - tier;
        }
        decimal surcharge = 0, outcome = 0;
        if (record.Status == "ok")
        {
            surcharge = Surcharge(plan, record);
            outcome = TagOutcomes(plan, record.Tags);
        }
        var discount = (usage + package + surcharge + outcome) * plan.Discount;
        return new RecordCharge(list, free, tier, usage, package, surcharge, outcome, discount);
    }

    /// <summary>
    /// True when <paramref name="request"/> was billed for <paramref name="outcome"/> through its own tags (a successful
    /// request carrying the outcome as a tag, <see cref="Price"/>): the same outcome reported later is not billed again.
    /// </summary>
    public static bool BilledAsTag(UsageRecord request, string outcome) =>
        request.Kind == UsageRecordKinds.Usage && request.Status == "ok" && Tags(request.Tags).Contains(outcome, StringComparer.Ordinal);

    /// <summary>The revenue of one reported outcome: its price less the plan's discount; null when the plan does not price it.</summary>
    public static decimal? OutcomeRevenue(PricingPlan plan, string outcome) =>
        plan.Outcomes.TryGetValue(outcome, out var price) ? price * (1m - plan.Discount) : null;

    /// <summary>Every started block of <see cref="PackagePrice.Tokens"/>: ⌈tokens ÷ block⌉, 0 for none.</summary>
    public static long Blocks(PackagePrice package, long tokens) => tokens <= 0 ? 0 : (tokens + package.Tokens - 1) / package.Tokens;

    private static decimal Position(TierSchedule tiers, MonthToDate before) => tiers.By == TierMeasure.Tokens ? before.Tokens : before.ListUsd;

    // The part of the list charge the free allowance waives. A plan that refuses or downgrades past its allowance never
    // bills usage; a billing one waives the share of this record's tokens (or list spend) still inside the allowance.
    private static decimal FreeShare(FreeTier? free, decimal list, long tokens, MonthToDate before)
    {
        if (free is null || list == 0)
        {
            return 0m;
        }
        if (free.After != FreeTierAfter.Bill)
        {
            return list;
        }
        if (free.Tokens is { } cap)
        {
            var inside = Math.Clamp(cap - before.Tokens, 0, tokens);
            return tokens == 0 ? 0m : list * inside / tokens;
        }
        return Math.Clamp(free.Usd!.Value - before.ListUsd, 0m, list);
    }

    // Graduated: the record's units [start, start + units) are split over the bands they cross, each share discounted by
    // its band. Volume: the whole charge at one band's discount.
    private static decimal TierDiscount(TierSchedule tiers, decimal chargeable, decimal units, decimal start, int? volumeBand)
    {
        if (chargeable == 0)
        {
            return 0m;
        }
        if (tiers.Mode == TierMode.Volume)
        {
            return chargeable * tiers.Bands[volumeBand ?? tiers.BandOf(start + units)].Discount;
        }
        if (units == 0)
        {
            return chargeable * tiers.Bands[tiers.BandOf(start)].Discount;
        }
        decimal discount = 0, lower = 0;
        var end = start + units;
        foreach (var band in tiers.Bands)
        {
            var upper = band.UpTo ?? decimal.MaxValue;
            var overlap = Math.Min(end, upper) - Math.Max(start, lower);
            if (overlap > 0 && band.Discount != 0)
            {
                discount += chargeable * overlap / units * band.Discount;
            }
            lower = upper;
            if (lower >= end)
            {
                break;
            }
        }
        return discount;
    }

    private static decimal Surcharge(PricingPlan plan, UsageRecord record)
    {
        if (plan.Surcharges.Count == 0)
        {
            return 0m;
        }
        var total = plan.Surcharges.TryGetValue(record.RequestedModel, out var byRoute) ? byRoute : 0m;
        foreach (var tag in Tags(record.Tags))
        {
            if (tag != record.RequestedModel && plan.Surcharges.TryGetValue(tag, out var byTag))
            {
                total += byTag;
            }
        }
        return total;
    }

    private static decimal TagOutcomes(PricingPlan plan, string tags)
    {
        decimal total = 0;
        if (plan.Outcomes.Count > 0)
        {
            foreach (var tag in Tags(tags))
            {
                total += plan.Outcomes.TryGetValue(tag, out var price) ? price : 0m;
            }
        }
        return total;
    }

    /// <summary>The distinct tags of a record's comma-separated <see cref="UsageRecord.Tags"/>.</summary>
    public static IEnumerable<string> Tags(string tags) =>
        tags.Length == 0 ? [] : tags.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal);
}
