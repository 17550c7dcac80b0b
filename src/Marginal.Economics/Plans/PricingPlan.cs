namespace Marginal.Economics.Plans;

/// <summary>
/// A tenant's pricing plan: how a month of ledger records becomes revenue (docs/economics.md, "Pricing plans").
/// Immutable; built and validated from the plans file. Money is USD, token prices USD per million tokens.
/// </summary>
/// <param name="Name">The plan's name in the plans file.</param>
/// <param name="Prices">List prices per requested model; a model not listed is charged at cost × (1 + <paramref name="Markup"/>).</param>
/// <param name="Markup">Fraction added to cost for models without a list price; 0 passes cost through.</param>
/// <param name="Tiers">Graduated or volume discounts by monthly tokens or list spend; null: none.</param>
/// <param name="Package">Blocks of tokens at a fixed price, replacing per-token charges; null: none.</param>
/// <param name="Free">A monthly free allowance and what happens past it; null: none.</param>
/// <param name="Prepaid">True: requests burn prepaid credits and are refused (402) once they are used up.</param>
/// <param name="CommitmentUsd">Monthly minimum: a month billed below it is trued up to it; 0: none.</param>
/// <param name="Discount">Enterprise discount, a fraction of every charge in [0, 1).</param>
/// <param name="Outcomes">Price per successful outcome, by outcome name (feedback <c>outcome</c> or a request tag).</param>
/// <param name="Surcharges">Price per request of a premium route or feature, by requested model or request tag.</param>
public sealed record PricingPlan(
    string Name,
    IReadOnlyDictionary<string, TokenPrice> Prices,
    decimal Markup = 0m,
    TierSchedule? Tiers = null,
    PackagePrice? Package = null,
    FreeTier? Free = null,
    bool Prepaid = false,
    decimal CommitmentUsd = 0m,
    decimal Discount = 0m,
    IReadOnlyDictionary<string, decimal>? Outcomes = null,
    IReadOnlyDictionary<string, decimal>? Surcharges = null)
{
    public IReadOnlyDictionary<string, decimal> Outcomes { get; init; } = Outcomes ?? new Dictionary<string, decimal>();

    public IReadOnlyDictionary<string, decimal> Surcharges { get; init; } = Surcharges ?? new Dictionary<string, decimal>();

    /// <summary>A plan that passes cost through at no markup: what a tenant without a plan is charged.</summary>
    public static PricingPlan AtCost { get; } = new("at-cost", new Dictionary<string, TokenPrice>());
}

/// <summary>A list price, USD per million tokens. <paramref name="CachedInput"/> null: cached input at <paramref name="Input"/>.</summary>
public sealed record TokenPrice(decimal Input, decimal? CachedInput, decimal Output);

/// <summary>What a tier's position is measured in: tokens (input + output) or list spend before discounts, USD.</summary>
public enum TierMeasure
{
    Tokens,
    Usd,
}

/// <summary>
/// <c>Graduated</c>: each unit is discounted by the band it falls in. <c>Volume</c>: every unit of the month is discounted
/// by the band the month's total ends in.
/// </summary>
public enum TierMode
{
    Graduated,
    Volume,
}

/// <summary>One band: units up to <paramref name="UpTo"/> (exclusive of the next band; null: no end) get <paramref name="Discount"/>.</summary>
public sealed record TierBand(decimal? UpTo, decimal Discount);

/// <summary>Bands in ascending order; the last has no end.</summary>
public sealed record TierSchedule(TierMode Mode, TierMeasure By, IReadOnlyList<TierBand> Bands)
{
    /// <summary>The index of the band that holds unit position <paramref name="position"/> (a month total of exactly UpTo is in that band).</summary>
    public int BandOf(decimal position)
    {
        for (var i = 0; i < Bands.Count; i++)
        {
            if (Bands[i].UpTo is not { } upTo || position <= upTo)
            {
                return i;
            }
        }
        return Bands.Count - 1;
    }
}

/// <summary>Package pricing: every started block of <paramref name="Tokens"/> tokens costs <paramref name="Usd"/>.</summary>
public sealed record PackagePrice(long Tokens, decimal Usd);

/// <summary>What a free allowance does once used up.</summary>
public enum FreeTierAfter
{
    /// <summary>Refuse with 402 until the next month; nothing is billed.</summary>
    Refuse,
    /// <summary>Serve on <see cref="FreeTier.Model"/>; nothing is billed.</summary>
    Downgrade,
    /// <summary>Bill usage past the allowance at the plan's prices.</summary>
    Bill,
}

/// <summary>A monthly allowance of <paramref name="Tokens"/> tokens or <paramref name="Usd"/> of list spend (one of them).</summary>
public sealed record FreeTier(long? Tokens, decimal? Usd, FreeTierAfter After, string? Model)
{
    /// <summary>True once <paramref name="month"/> has used the allowance up.</summary>
    public bool UsedUp(MonthToDate month) => Tokens is { } t ? month.Tokens >= t : month.ListUsd >= Usd!.Value;
}

/// <summary>A tenant's usage so far this month: tokens (input + output) and list charges before tiers, free allowance and discount.</summary>
public readonly record struct MonthToDate(long Tokens, decimal ListUsd)
{
    public MonthToDate Add(long tokens, decimal listUsd) => new(Tokens + tokens, ListUsd + listUsd);
}
