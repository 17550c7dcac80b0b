using Marginal.Core.Caching;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Configuration;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Time.Testing;

namespace Marginal.Gateway.Tests.Caching;

public sealed class CacheStoreTests
{
    private static CachedAnswer Answer(string text) => new(new ChatResponse(new ChatMessage(ChatRole.Assistant, text)), null, "m", "p", 0.01m);

    [Fact]
    public async Task Set_BeyondMaxEntries_LeastRecentlyUsedEvicted()
    {
        var store = new MemoryResponseCacheStore(maxEntries: 2, maxBytes: 1 << 20, TimeProvider.System);
        await store.SetAsync("a", Answer("A"), TimeSpan.FromHours(1), default);
        await store.SetAsync("b", Answer("B"), TimeSpan.FromHours(1), default);
        await store.GetAsync("a", default);

        await store.SetAsync("c", Answer("C"), TimeSpan.FromHours(1), default);

        Assert.NotNull(await store.GetAsync("a", default));
        Assert.Null(await store.GetAsync("b", default));
        Assert.NotNull(await store.GetAsync("c", default));
    }

    [Fact]
    public async Task Set_BeyondMaxBytes_OldestEvicted()
    {
        var big = new string('x', 1000);
        var store = new MemoryResponseCacheStore(maxEntries: 100, maxBytes: 2 * Answer(big).SizeBytes + 10, TimeProvider.System);
        await store.SetAsync("a", Answer(big), TimeSpan.FromHours(1), default);
        await store.SetAsync("b", Answer(big), TimeSpan.FromHours(1), default);

        await store.SetAsync("c", Answer(big), TimeSpan.FromHours(1), default);

        Assert.Equal(2, store.Count);
        Assert.Null(await store.GetAsync("a", default));
    }

    [Fact]
    public async Task Get_PastTtl_ReturnsNull()
    {
        var time = new FakeTimeProvider();
        var store = new MemoryResponseCacheStore(10, 1 << 20, time);
        await store.SetAsync("a", Answer("A"), TimeSpan.FromSeconds(30), default);

        time.Advance(TimeSpan.FromSeconds(31));

        Assert.Null(await store.GetAsync("a", default));
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public void Semantic_BeyondMaxEntries_OldestEvicted()
    {
        var cache = new SemanticCache(2, maxEntries: 2, TimeProvider.System);
        cache.Add("s", "first", [1, 0], Answer("1"), TimeSpan.FromHours(1));
        cache.Add("s", "second", [0, 1], Answer("2"), TimeSpan.FromHours(1));

        cache.Add("s", "third", [0.6f, 0.8f], Answer("3"), TimeSpan.FromHours(1));

        Assert.Equal(2, cache.Count);
        Assert.Equal("third", cache.Nearest("s", [1, 0])!.Prompt);
    }

    [Fact]
    public void VectorIndex_RemoveMiddle_NearestStillCorrect()
    {
        var index = new VectorIndex(2);
        index.Add(1, [1, 0]);
        index.Add(2, [0, 1]);
        index.Add(3, [-1, 0]);

        index.Remove(1);

        Assert.Equal((3L, 1f), index.Nearest([-1, 0])!.Value);
        Assert.Equal(2L, index.Nearest([0.9f, 0.1f])!.Value.Id);
    }

    [Theory]
    [InlineData("What is 2 + 2?", "What's 2 plus 2?", null)]
    [InlineData("Tax rate in 2023", "Tax rate in 2024", "numbers")]
    [InlineData("Is Paris in France?", "Is Paris not in France?", "negation")]
    [InlineData("Is Paris in France?", "Isn't Paris in France?", "negation")]
    [InlineData("Tell me about the Eiffel Tower in Paris", "Tell me about the Eiffel Tower in Lyon", "entities")]
    [InlineData("Tell me about Python.", "Explain python to me.", null)]
    public void FirstFailed_PromptPairs_NamesTheCheck(string a, string b, string? expected)
    {
        Assert.Equal(expected, PromptChecks.FirstFailed(a, b, PromptChecks.All));
    }

    [Theory]
    [InlineData("cache:\n  exact: { ttl: soon }\n", "cache.exact.ttl")]
    [InlineData("cache:\n  semantic: { threshold: 1.5 }\n", "cache.semantic.threshold")]
    [InlineData("cache:\n  semantic: { enabled: true, embeddings: nope }\n", "cache.semantic.embeddings")]
    [InlineData("cache:\n  semantic: { min_margin: -0.1 }\n", "cache.semantic.min_margin")]
    [InlineData("cache:\n  semantic: { min_margin: 1 }\n", "cache.semantic.min_margin")]
    [InlineData("cache:\n  routes:\n    m: { semantic: true }\n", "cache.routes.m.semantic")]
    [InlineData("cache:\n  exact: { max_entries: 0 }\n", "cache.exact.max_entries")]
    public void Parse_BadCacheSection_ErrorNamesTheField(string yaml, string field)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "marginal.yaml"));

        Assert.StartsWith($"marginal.yaml: {field}:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_UnknownEmbeddings_ErrorListsTheInProcessModels()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("cache:\n  semantic: { embeddings: nope }\n", "marginal.yaml"));

        Assert.Contains("allowed: minilm, arctic-xs, ensemble", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("arctic-xs", 0.05)]
    [InlineData("ensemble", 0)]
    public void Parse_SemanticEmbeddingsAndMargin_Kept(string embeddings, double margin)
    {
        var config = ConfigLoader.Parse($"cache:\n  semantic: {{ embeddings: {embeddings}, min_margin: {margin.ToString(System.Globalization.CultureInfo.InvariantCulture)} }}\n", "marginal.yaml");

        Assert.Equal((embeddings, margin), (config.Cache.Semantic.Embeddings, config.Cache.Semantic.MinMargin));
    }
}
