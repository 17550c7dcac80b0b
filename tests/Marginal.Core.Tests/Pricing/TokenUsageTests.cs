using Marginal.Core.Pricing;
using Microsoft.Extensions.AI;

namespace Marginal.Core.Tests.Pricing;

public sealed class TokenUsageTests
{
    [Fact]
    public void FromUsageDetails_Null_IsAllZero()
    {
        var usage = TokenUsage.FromUsageDetails(null, batched: true);

        Assert.Equal(new TokenUsage(0, Batched: true), usage);
    }

    [Fact]
    public void FromUsageDetails_OpenAIShape_KeepsReasoningInsideOutput()
    {
        var usage = TokenUsage.FromUsageDetails(new UsageDetails
        {
            InputTokenCount = 100, CachedInputTokenCount = 40, OutputTokenCount = 50, ReasoningTokenCount = 30,
        });

        Assert.Equal(new TokenUsage(100, CachedInputTokens: 40, OutputTokens: 50, ReasoningTokens: 30), usage);
        Assert.Equal(60, usage.UncachedInputTokens);
    }

    [Fact]
    public void FromUsageDetails_AnthropicShapeWithoutOneHourKey_CountsAllWritesAsFiveMinute()
    {
        var usage = TokenUsage.FromUsageDetails(new UsageDetails
        {
            InputTokenCount = 26_000,
            CachedInputTokenCount = 20_000,
            AdditionalCounts = new() { [TokenUsage.CacheWriteTokensKey] = 5_000 },
        });

        Assert.Equal(5_000, usage.CacheWrite5mTokens);
        Assert.Equal(0, usage.CacheWrite1hTokens);
        Assert.Equal(1_000, usage.UncachedInputTokens);
    }

    [Fact]
    public void UncachedInputTokens_MoreCachedThanTotal_IsZero()
    {
        var usage = new TokenUsage(InputTokens: 10, CachedInputTokens: 20);

        Assert.Equal(0, usage.UncachedInputTokens);
    }
}
