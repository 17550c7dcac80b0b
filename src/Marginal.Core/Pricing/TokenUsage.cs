using Microsoft.Extensions.AI;

namespace Marginal.Core.Pricing;

/// <summary>
/// The tokens of one request in the gateway's normalised shape, whatever the provider's own convention
/// (docs/economics.md, "Usage conventions").
/// </summary>
/// <param name="InputTokens">All prompt tokens, INCLUDING <paramref name="CachedInputTokens"/> and both cache writes (OpenAI's <c>prompt_tokens</c>).</param>
/// <param name="CachedInputTokens">Prompt tokens read from the provider's cache; part of <paramref name="InputTokens"/>.</param>
/// <param name="CacheWrite5mTokens">Prompt tokens written to a 5-minute cache; part of <paramref name="InputTokens"/>.</param>
/// <param name="CacheWrite1hTokens">Prompt tokens written to a 1-hour cache; part of <paramref name="InputTokens"/>.</param>
/// <param name="OutputTokens">All generated tokens, reasoning INCLUDED (OpenAI's <c>completion_tokens</c>, Anthropic's <c>output_tokens</c>).</param>
/// <param name="ReasoningTokens">The part of <paramref name="OutputTokens"/> spent reasoning; informational, never billed on top.</param>
/// <param name="Batched">True when the request ran on the provider's batch tier.</param>
public readonly record struct TokenUsage(
    long InputTokens,
    long CachedInputTokens = 0,
    long CacheWrite5mTokens = 0,
    long CacheWrite1hTokens = 0,
    long OutputTokens = 0,
    long ReasoningTokens = 0,
    bool Batched = false)
{
    /// <summary>
    /// Key in <see cref="UsageDetails.AdditionalCounts"/> for all prompt tokens written to the cache, as the gateway's
    /// Anthropic provider files them (the same string as its <c>CacheCreationInputTokensKey</c>).
    /// </summary>
    public const string CacheWriteTokensKey = "cache_creation_input_tokens";

    /// <summary>
    /// Key in <see cref="UsageDetails.AdditionalCounts"/> for the part of <see cref="CacheWriteTokensKey"/> written with a
    /// 1-hour lifetime (Anthropic's <c>usage.cache_creation.ephemeral_1h_input_tokens</c>). Absent: every write is a
    /// 5-minute write, Anthropic's default lifetime.
    /// </summary>
    public const string CacheWrite1hTokensKey = "cache_creation_1h_input_tokens";

    /// <summary>Prompt tokens billed at the plain input price: the total less cache reads and writes, never below zero.</summary>
    public long UncachedInputTokens => Math.Max(0, InputTokens - CachedInputTokens - CacheWrite5mTokens - CacheWrite1hTokens);

    /// <summary>
    /// Reads the usage the gateway's providers produce. Both already report OpenAI's convention:
    /// <see cref="UsageDetails.InputTokenCount"/> is every prompt token (the Anthropic provider adds cache reads and writes
    /// to Anthropic's <c>input_tokens</c>), <see cref="UsageDetails.CachedInputTokenCount"/> the cache reads, and
    /// <see cref="UsageDetails.OutputTokenCount"/> includes <see cref="UsageDetails.ReasoningTokenCount"/>.
    /// Missing counts read as zero. Pure: the same details give the same record.
    /// </summary>
    public static TokenUsage FromUsageDetails(UsageDetails? usage, bool batched = false)
    {
        if (usage is null)
        {
            return new TokenUsage(0, Batched: batched);
        }
        long written = 0;
        long written1h = 0;
        if (usage.AdditionalCounts is { } counts)
        {
            counts.TryGetValue(CacheWriteTokensKey, out written);
            counts.TryGetValue(CacheWrite1hTokensKey, out written1h);
        }
        written1h = Math.Clamp(written1h, 0, Math.Max(0, written));
        return new TokenUsage(
            InputTokens: usage.InputTokenCount ?? 0,
            CachedInputTokens: usage.CachedInputTokenCount ?? 0,
            CacheWrite5mTokens: Math.Max(0, written) - written1h,
            CacheWrite1hTokens: written1h,
            OutputTokens: usage.OutputTokenCount ?? 0,
            ReasoningTokens: usage.ReasoningTokenCount ?? 0,
            Batched: batched);
    }
}
