namespace Marginal.Core.Pricing;

/// <summary>
/// The list-price cost of one request, in USD. Pure and thread-safe.
/// <code>
/// cost = ( uncached × input + cached × cached_input + write5m × cache_write_5m + write1h × cache_write_1h
///          + output × output ) ÷ 1,000,000 × (batch_multiplier if batched, else 1)
/// </code>
/// Token counts are tokens, prices USD per million tokens (docs/economics.md). The arithmetic is exact
/// <see cref="decimal"/> and is never rounded here: round only when presenting a figure.
/// </summary>
public static class CostCalculator
{
    private const decimal TokensPerMillion = 1_000_000m;

    /// <summary>
    /// The cost of <paramref name="usage"/> at <paramref name="price"/>. A price the source does not list (cached input,
    /// either cache write) falls back to the input price, i.e. those tokens are billed as ordinary input. For cache
    /// reads that overstates the cost (no discount assumed); for cache writes, which vendors that charge for them price
    /// above input, it understates it, so the book must list write prices wherever the vendor charges for writes.
    /// </summary>
    public static decimal Cost(TokenUsage usage, ModelPrice price)
    {
        ArgumentNullException.ThrowIfNull(price);
        var perMillion =
            usage.UncachedInputTokens * price.Input
            + usage.CachedInputTokens * (price.CachedInput ?? price.Input)
            + usage.CacheWrite5mTokens * (price.CacheWrite5m ?? price.Input)
            + usage.CacheWrite1hTokens * (price.CacheWrite1h ?? price.Input)
            // Reasoning tokens are already inside OutputTokens for every provider the gateway speaks to.
            + usage.OutputTokens * price.Output;
        var cost = perMillion / TokensPerMillion;
        return usage.Batched ? cost * price.BatchMultiplier : cost;
    }
}
