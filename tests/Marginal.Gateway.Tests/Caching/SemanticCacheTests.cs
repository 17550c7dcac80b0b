using Marginal.Core.Caching;
using Marginal.Gateway.Caching;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Time.Testing;

namespace Marginal.Gateway.Tests.Caching;

/// <summary>The margin rule of the semantic cache on hand-made unit vectors.</summary>
public sealed class SemanticCacheTests
{
    private static readonly CachedAnswer Answer = new(new ChatResponse(), null, null, null, null);

    // query = (0.96, 0.28); "alpha" = (1, 0): cosine 0.96; "beta" = (0.8, 0.6): cosine 0.936. Margin 0.024.
    private static readonly float[] Query = [0.96f, 0.28f];

    private static SemanticCache Cache(string second)
    {
        var cache = new SemanticCache(2, 10, new FakeTimeProvider());
        cache.Add("scope", "alpha", [1, 0], Answer, TimeSpan.FromHours(1));
        cache.Add("scope", second, [0.8f, 0.6f], Answer, TimeSpan.FromHours(1));
        return cache;
    }

    [Theory]
    [InlineData(0.02, "alpha", null)]
    [InlineData(0.03, null, "margin")]
    public void Find_TwoDifferentPromptsClose_MarginDecides(double minMargin, string? hit, string? refusedBy)
    {
        var match = Cache("beta").Find("scope", "alpha", Query, 0.9, minMargin, out var reason);

        Assert.Equal((hit, refusedBy), (match?.Prompt, reason));
    }

    [Fact]
    public void Find_RunnerUpIsTheSamePrompt_NotARival()
    {
        var match = Cache("alpha").Find("scope", "alpha", Query, 0.9, 0.5, out var reason);

        Assert.Equal(("alpha", null), (match?.Prompt, reason));
    }
}
