using Marginal.Core.Pricing;
using Microsoft.Extensions.AI;

namespace Marginal.Core.Tests.Pricing;

public sealed class CostCalculatorTests
{
    private static readonly DateOnly AsOf = new(2026, 11, 27);

    // Test prices, USD per million tokens; shaped like the providers' but not taken from the shipped book.
    private static readonly ModelPrice OpenAIStyle = new(
        Input: 2.50m, CachedInput: 1.25m, CacheWrite5m: null, CacheWrite1h: null, Output: 10m, BatchMultiplier: 0.5m, "test", AsOf);

    private static readonly ModelPrice AnthropicStyle = new(
        Input: 3m, CachedInput: 0.30m, CacheWrite5m: 3.75m, CacheWrite1h: 6m, Output: 15m, BatchMultiplier: 0.5m, "test", AsOf);

    private static readonly ModelPrice NoCachePrices = new(
        Input: 0.27m, CachedInput: null, CacheWrite5m: null, CacheWrite1h: null, Output: 1.10m, BatchMultiplier: 1m, "test", AsOf);

    [Fact]
    public void Cost_OpenAIUsageWithCachedAndReasoningTokens_BillsCachedAtCachedPriceAndReasoningOnceAsOutput()
    {
        // prompt_tokens 10,000 of which cached_tokens 4,000; completion_tokens 1,500 of which reasoning_tokens 1,000.
        var usage = TokenUsage.FromUsageDetails(new UsageDetails
        {
            InputTokenCount = 10_000,
            CachedInputTokenCount = 4_000,
            OutputTokenCount = 1_500,
            ReasoningTokenCount = 1_000,
        });

        var cost = CostCalculator.Cost(usage, OpenAIStyle);

        // (6,000 × 2.50 + 4,000 × 1.25 + 1,500 × 10) ÷ 1,000,000 = (15,000 + 5,000 + 15,000) ÷ 1,000,000
        Assert.Equal(0.035m, cost);
    }

    [Fact]
    public void Cost_AnthropicUsageWithCacheWriteAndRead_BillsEachPartAtItsPrice()
    {
        // Anthropic reported input_tokens 1,000, cache_read_input_tokens 20,000, cache_creation_input_tokens 5,000,
        // output_tokens 800; the gateway's Anthropic provider folds them into the shape below.
        var details = new UsageDetails
        {
            InputTokenCount = 26_000,
            CachedInputTokenCount = 20_000,
            OutputTokenCount = 800,
            AdditionalCounts = new() { [TokenUsage.CacheWriteTokensKey] = 5_000 },
        };

        var cost = CostCalculator.Cost(TokenUsage.FromUsageDetails(details), AnthropicStyle);

        // (1,000 × 3 + 20,000 × 0.30 + 5,000 × 3.75 + 800 × 15) ÷ 1,000,000 = 39,750 ÷ 1,000,000
        Assert.Equal(0.03975m, cost);
    }

    [Fact]
    public void Cost_AnthropicUsageWithOneHourWrites_BillsThemAtTheOneHourPrice()
    {
        var details = new UsageDetails
        {
            InputTokenCount = 26_000,
            CachedInputTokenCount = 20_000,
            OutputTokenCount = 800,
            AdditionalCounts = new() { [TokenUsage.CacheWriteTokensKey] = 5_000, [TokenUsage.CacheWrite1hTokensKey] = 2_000 },
        };

        var cost = CostCalculator.Cost(TokenUsage.FromUsageDetails(details), AnthropicStyle);

        // (1,000 × 3 + 20,000 × 0.30 + 3,000 × 3.75 + 2,000 × 6 + 800 × 15) ÷ 1,000,000 = 44,250 ÷ 1,000,000
        Assert.Equal(0.04425m, cost);
    }

    [Fact]
    public void Cost_Batched_AppliesBatchMultiplierToTheWholeCost()
    {
        var usage = new TokenUsage(InputTokens: 10_000, CachedInputTokens: 4_000, OutputTokens: 1_500, Batched: true);

        var cost = CostCalculator.Cost(usage, OpenAIStyle);

        // 0.035 × 0.5
        Assert.Equal(0.0175m, cost);
    }

    [Fact]
    public void Cost_NoCacheWritePrice_BillsWritesAtInputPrice()
    {
        var usage = new TokenUsage(InputTokens: 1_000, CacheWrite5mTokens: 300, CacheWrite1hTokens: 100, OutputTokens: 100);

        var cost = CostCalculator.Cost(usage, NoCachePrices);

        // (600 × 0.27 + 300 × 0.27 + 100 × 0.27 + 100 × 1.10) ÷ 1,000,000 = 380 ÷ 1,000,000
        Assert.Equal(0.00038m, cost);
    }

    [Fact]
    public void Cost_NoCachedInputPrice_BillsCacheReadsAtInputPrice()
    {
        var usage = new TokenUsage(InputTokens: 1_000, CachedInputTokens: 900);

        var cost = CostCalculator.Cost(usage, NoCachePrices);

        Assert.Equal(0.00027m, cost);
    }

    [Fact]
    public void Cost_SingleToken_IsExactAndUnrounded()
    {
        var cost = CostCalculator.Cost(new TokenUsage(InputTokens: 1), NoCachePrices);

        Assert.Equal(0.00000027m, cost);
    }

    [Fact]
    public void Cost_NotBatched_IgnoresBatchMultiplier()
    {
        var cost = CostCalculator.Cost(new TokenUsage(InputTokens: 1_000_000), OpenAIStyle);

        Assert.Equal(2.50m, cost);
    }
}
