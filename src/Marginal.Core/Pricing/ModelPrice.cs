namespace Marginal.Core.Pricing;

/// <summary>
/// What one model costs, in USD per million tokens (never per token), with where the figures came from.
/// A null price means the source lists none for that kind of token; <see cref="CostCalculator"/> then bills
/// those tokens at <see cref="Input"/> (see docs/economics.md, "Missing prices").
/// </summary>
/// <param name="Input">Uncached input tokens, USD per million.</param>
/// <param name="CachedInput">Input tokens read from the provider's prompt cache, USD per million.</param>
/// <param name="CacheWrite5m">Input tokens written to a 5-minute prompt cache, USD per million.</param>
/// <param name="CacheWrite1h">Input tokens written to a 1-hour prompt cache, USD per million.</param>
/// <param name="Output">Output tokens, reasoning tokens included, USD per million.</param>
/// <param name="BatchMultiplier">Factor on the whole cost when the request ran on the batch tier, in (0, 1]; 1 when the source lists no batch discount.</param>
/// <param name="Source">URL or document name the figures were read from.</param>
/// <param name="AsOf">The date the source states, or the date the figures were read from it.</param>
public sealed record ModelPrice(
    decimal Input,
    decimal? CachedInput,
    decimal? CacheWrite5m,
    decimal? CacheWrite1h,
    decimal Output,
    decimal BatchMultiplier,
    string Source,
    DateOnly AsOf);
