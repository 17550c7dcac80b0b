using Marginal.Core.Pricing;
using Marginal.Gateway.Tokens;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Pricing;

/// <summary>
/// The price of one answer, worked out one way wherever it is needed (metering's record, the cache's saving, the
/// router's counterfactual): the upstream's reported usage when it gave any, else the prompt and output counted with
/// the model's tokenizer; then <see cref="CostCalculator"/> at the catalog entry's price.
/// </summary>
public static class AnswerPricing
{
    /// <summary>True when the upstream reported input or output tokens (the record's usage source is then <c>reported</c>).</summary>
    public static bool IsReported(UsageDetails? usage) => usage is { InputTokenCount: not null } or { OutputTokenCount: not null };

    /// <summary>The answer's tokens: <paramref name="usage"/> when reported, else <paramref name="prompt"/> and <paramref name="output"/> counted in <paramref name="encoding"/>.</summary>
    public static TokenUsage Tokens(UsageDetails? usage, string? encoding, IEnumerable<ChatMessage> prompt, string? output) =>
        IsReported(usage)
            ? TokenUsage.FromUsageDetails(usage)
            : new TokenUsage(TokenCounter.CountPrompt(encoding, prompt), OutputTokens: TokenCounter.CountText(encoding, output));

    /// <summary>The list-price cost of the answer on <paramref name="catalog"/>'s entry; null when unpriced.</summary>
    public static decimal? ListCost(CatalogEntry? catalog, UsageDetails? usage, IEnumerable<ChatMessage> prompt, string? output) =>
        catalog is null ? null : CostCalculator.Cost(Tokens(usage, catalog.TokenizerEncoding, prompt, output), catalog.Price);
}
