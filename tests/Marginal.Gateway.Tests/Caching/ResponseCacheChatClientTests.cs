using System.Runtime.CompilerServices;
using Marginal.Core.Requests;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
using Marginal.Gateway.Providers;
using Marginal.Testing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Time.Testing;

namespace Marginal.Gateway.Tests.Caching;

/// <summary>The cache in front of a counting upstream: what is stored, for whom, and what is refused.</summary>
public sealed class ResponseCacheChatClientTests
{
    private const string Yaml = """
        providers:
          p: { kind: openai }
        models:
          m: { provider: p, upstream: up }
          s: { provider: p, upstream: up }
        cache:
          exact: { ttl: 10m, max_entries: 100 }
          semantic: { enabled: true, threshold: 0.85 }
          routes:
            s: { semantic: true, cache_sampled: true }
        """;

    private readonly TestChatClient _upstream = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-28T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private int _calls;
    private bool _fail;
    private bool _breakStream;

    private ResponseCacheChatClient Create(string yaml = Yaml)
    {
        _upstream.GetResponseAsyncCallback = (_, _, _) =>
        {
            var n = Interlocked.Increment(ref _calls);
            return _fail
                ? throw new InvalidOperationException("upstream failed")
                : Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, $"answer {n}")) { FinishReason = ChatFinishReason.Stop });
        };
        _upstream.GetStreamingResponseAsyncCallback = (_, _, ct) => Stream(Interlocked.Increment(ref _calls), ct);
        var models = new GatewayModelSource(GatewayModel.Assemble(ConfigLoader.Parse(yaml, "t.yaml"),
            new Dictionary<string, UpstreamProvider> { ["p"] = new("p", "openai", _upstream, null) }));
        return new ResponseCacheChatClient(_upstream, models, _time);
    }

    private async IAsyncEnumerable<ChatResponseUpdate> Stream(int n, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        yield return new ChatResponseUpdate(ChatRole.Assistant, "streamed ");
        await Task.Yield();
        if (_breakStream)
        {
            throw new IOException("connection reset");
        }
        yield return new ChatResponseUpdate(ChatRole.Assistant, $"answer {n}");
        yield return new ChatResponseUpdate { FinishReason = ChatFinishReason.Stop };
    }

    private static ChatOptions Options(string tenant = "t1", string model = "m", float? temperature = 0f, bool bypass = false) =>
        new ChatOptions { ModelId = model, Temperature = temperature }.WithGatewayContext(new GatewayContext { Tenant = tenant, CacheBypass = bypass });

    private static List<ChatMessage> Ask(string text) => [new(ChatRole.System, "Be brief."), new(ChatRole.User, text)];

    private static async Task<(string Text, string? Outcome, double? Similarity)> AskAsync(ResponseCacheChatClient cache, string text, ChatOptions options)
    {
        var response = await cache.GetResponseAsync(Ask(text), options);
        var context = options.GetGatewayContext()!;
        return (response.Text, context.CacheOutcome, context.CacheSimilarity);
    }

    [Fact]
    public async Task GetResponse_SameRequestTwice_SecondIsExactHitWithoutUpstreamCall()
    {
        var cache = Create();

        var first = await AskAsync(cache, "What is 2+2?", Options());
        var second = await AskAsync(cache, "What is 2+2?", Options());

        Assert.Equal(("answer 1", "miss"), (first.Text, first.Outcome));
        Assert.Equal(("answer 1", "hit-exact"), (second.Text, second.Outcome));
        Assert.Equal(1, _calls);
    }

    [Fact]
    public async Task GetResponse_SameRequestOtherTenant_IsMiss()
    {
        var cache = Create();

        await AskAsync(cache, "What is 2+2?", Options(tenant: "a"));
        var other = await AskAsync(cache, "What is 2+2?", Options(tenant: "b"));

        Assert.Equal(("answer 2", "miss"), (other.Text, other.Outcome));
    }

    [Fact]
    public async Task GetResponse_OutputChangingOptionDiffers_IsMiss()
    {
        var cache = Create();
        await AskAsync(cache, "What is 2+2?", Options());

        var options = Options();
        options.MaxOutputTokens = 5;
        var capped = await AskAsync(cache, "What is 2+2?", options);
        var tools = Options();
        tools.Tools = [AIFunctionFactory.Create(() => 4, "add")];
        var withTools = await AskAsync(cache, "What is 2+2?", tools);

        Assert.Equal(("miss", "miss"), (capped.Outcome, withTools.Outcome));
        Assert.Equal(3, _calls);
    }

    [Fact]
    public async Task GetResponse_UpstreamFails_ErrorNotCached()
    {
        var cache = Create();
        _fail = true;
        await Assert.ThrowsAsync<InvalidOperationException>(() => cache.GetResponseAsync(Ask("What is 2+2?"), Options()));
        _fail = false;

        var next = await AskAsync(cache, "What is 2+2?", Options());

        Assert.Equal(("answer 2", "miss"), (next.Text, next.Outcome));
    }

    [Fact]
    public async Task GetResponse_SampledWithoutRouteOptIn_NotCachedAndBypass()
    {
        var cache = Create();

        var first = await AskAsync(cache, "Write a poem", Options(temperature: null));
        var second = await AskAsync(cache, "Write a poem", Options(temperature: 0.7f));
        var third = await AskAsync(cache, "Write a poem", Options(temperature: 0.7f));

        Assert.All(new[] { first.Outcome, second.Outcome, third.Outcome }, o => Assert.Equal("bypass", o));
        Assert.Equal(3, _calls);
    }

    [Fact]
    public async Task GetResponse_SampledOnOptedInRoute_Cached()
    {
        var cache = Create();

        await AskAsync(cache, "Write a poem", Options(model: "s", temperature: 0.7f));
        var again = await AskAsync(cache, "Write a poem", Options(model: "s", temperature: 0.7f));

        Assert.Equal(("answer 1", "hit-exact"), (again.Text, again.Outcome));
    }

    [Fact]
    public async Task GetResponse_ClientBypass_NeitherReadNorWritten()
    {
        var cache = Create();
        await AskAsync(cache, "What is 2+2?", Options());

        var bypassed = await AskAsync(cache, "What is 2+2?", Options(bypass: true));

        Assert.Equal(("answer 2", "bypass"), (bypassed.Text, bypassed.Outcome));
        Assert.Equal("answer 1", (await AskAsync(cache, "What is 2+2?", Options())).Text);
    }

    [Fact]
    public async Task GetResponse_AfterTtl_IsMiss()
    {
        var cache = Create();
        await AskAsync(cache, "What is 2+2?", Options());

        _time.Advance(TimeSpan.FromMinutes(9));
        var within = await AskAsync(cache, "What is 2+2?", Options());
        _time.Advance(TimeSpan.FromMinutes(2));
        var after = await AskAsync(cache, "What is 2+2?", Options());

        Assert.Equal(("hit-exact", "miss"), (within.Outcome, after.Outcome));
    }

    [Fact]
    public async Task GetStreaming_Replayed_SameUpdatesAsFirstStream()
    {
        var cache = Create();

        var first = await cache.GetStreamingResponseAsync(Ask("Stream it"), Options()).ToListAsync();
        var options = Options();
        var replay = await cache.GetStreamingResponseAsync(Ask("Stream it"), options).ToListAsync();

        Assert.Equal("hit-exact", options.GetGatewayContext()!.CacheOutcome);
        Assert.Equal(first.Select(u => (u.Text, u.FinishReason)), replay.Select(u => (u.Text, u.FinishReason)));
        Assert.Equal(1, _calls);
    }

    [Fact]
    public async Task GetStreaming_BrokenStream_NotCached()
    {
        var cache = Create();
        _breakStream = true;
        await Assert.ThrowsAsync<IOException>(async () => await cache.GetStreamingResponseAsync(Ask("Stream it"), Options()).ToListAsync());
        _breakStream = false;

        var options = Options();
        await cache.GetStreamingResponseAsync(Ask("Stream it"), options).ToListAsync();

        Assert.Equal("miss", options.GetGatewayContext()!.CacheOutcome);
    }

    [Fact]
    public async Task GetStreaming_AbandonedStream_NotCached()
    {
        var cache = Create();
        await foreach (var update in cache.GetStreamingResponseAsync(Ask("Stream it"), Options()))
        {
            break;
        }

        var options = Options();
        await cache.GetStreamingResponseAsync(Ask("Stream it"), options).ToListAsync();

        Assert.Equal("miss", options.GetGatewayContext()!.CacheOutcome);
    }

    [Fact]
    public async Task GetResponse_ParaphraseOnSemanticRoute_HitWithSimilarity()
    {
        var cache = Create();
        await AskAsync(cache, "How do I reset my password on the website?", Options(model: "s"));

        var hit = await AskAsync(cache, "How can I reset my password on the website?", Options(model: "s"));

        Assert.Equal(("answer 1", "hit-semantic"), (hit.Text, hit.Outcome));
        Assert.InRange(hit.Similarity!.Value, 0.85, 1.0);
    }

    [Fact]
    public async Task GetResponse_NearDuplicateWithOtherNumber_Refused()
    {
        var cache = Create();
        await AskAsync(cache, "What is the capital gains tax rate for 2023?", Options(model: "s"));

        var options = Options(model: "s");
        var other = await AskAsync(cache, "What is the capital gains tax rate for 2024?", options);

        Assert.Equal(("answer 2", "miss"), (other.Text, other.Outcome));
        Assert.Contains("cache-refused:numbers", options.GetGatewayContext()!.Tags);
    }

    [Theory]
    [InlineData(0.0, "hit-semantic")]
    [InlineData(0.3, "miss")]
    public async Task GetResponse_QueryNearTwoCachedPrompts_MinMarginDecides(double minMargin, string expected)
    {
        var cache = Create(Yaml.Replace("threshold: 0.85 }", $"threshold: 0.85, min_margin: {minMargin.ToString(System.Globalization.CultureInfo.InvariantCulture)} }}", StringComparison.Ordinal));
        await AskAsync(cache, "How do I reset my password on the website?", Options(model: "s"));
        await AskAsync(cache, "How do I reset my password in the mobile app?", Options(model: "s"));

        var options = Options(model: "s");
        var result = await AskAsync(cache, "How can I reset my password on the website?", options);

        // The website prompt is the nearer (a hit without a margin), but the app prompt is within 0.3 of it.
        Assert.Equal(expected, result.Outcome);
        Assert.Equal(expected == "miss", options.GetGatewayContext()!.Tags.Contains("cache-refused:margin"));
    }

    [Fact]
    public async Task GetResponse_ArcticEmbeddingsParaphrase_HitWithSimilarity()
    {
        var cache = Create(Yaml.Replace("threshold: 0.85 }", "threshold: 0.85, embeddings: arctic-xs }", StringComparison.Ordinal));
        await AskAsync(cache, "How do I reset my password on the website?", Options(model: "s"));

        var hit = await AskAsync(cache, "How can I reset my password on the website?", Options(model: "s"));

        Assert.Equal(("answer 1", "hit-semantic"), (hit.Text, hit.Outcome));
    }

    [Fact]
    public async Task GetResponse_ParaphraseFromOtherTenant_IsMiss()
    {
        var cache = Create();
        await AskAsync(cache, "How do I reset my password on the website?", Options(tenant: "a", model: "s"));

        var other = await AskAsync(cache, "How can I reset my password on the website?", Options(tenant: "b", model: "s"));

        Assert.Equal(("answer 2", "miss"), (other.Text, other.Outcome));
    }

    [Fact]
    public async Task GetResponse_ParaphraseOnRouteWithoutSemantic_IsMiss()
    {
        var cache = Create();
        await AskAsync(cache, "How do I reset my password on the website?", Options());

        var other = await AskAsync(cache, "How can I reset my password on the website?", Options());

        Assert.Equal(("answer 2", "miss"), (other.Text, other.Outcome));
    }
}
