using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Gateway.Capacity;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
using Marginal.Gateway.Pipeline;
using Marginal.Gateway.Providers;
using Marginal.Testing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Time.Testing;

namespace Marginal.Gateway.Tests.Capacity;

public sealed class CapacityEmbeddingGeneratorTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private readonly TestChatClient _chatA = new();
    private readonly List<string> _embeddedBy = [];
    private readonly GatewayModelSource _models;
    private readonly UpstreamCooldowns _cooldowns;
    private Func<string, Exception?> _failure = _ => null;

    public CapacityEmbeddingGeneratorTests()
    {
        // Provider a serves the chat model and the embedding model under one upstream id (one rate limit upstream);
        // provider b is the embedding model's fallback.
        var config = ConfigLoader.Parse("""
            providers:
              a: { kind: openai }
              b: { kind: openai }
            models:
              chat: { provider: a, upstream: shared-1 }
              embed: { provider: a, upstream: shared-1, type: embedding, fallbacks: [embed-b] }
              embed-b: { provider: b, upstream: b-1, type: embedding }
            """, "test.yaml");
        var model = GatewayModel.Assemble(config, new Dictionary<string, UpstreamProvider>
        {
            ["a"] = new("a", "openai", _chatA, upstream => new CallbackGenerator("a", upstream, this)),
            ["b"] = new("b", "openai", new TestChatClient(), upstream => new CallbackGenerator("b", upstream, this)),
        });
        _models = new GatewayModelSource(model);
        _cooldowns = new UpstreamCooldowns(_time);
    }

    private Task<GeneratedEmbeddings<Embedding<float>>> EmbedAsync(GatewayContext context) =>
        GatewayPipeline.BuildEmbeddings(_models, _time, _cooldowns).GenerateAsync(["hello"], new EmbeddingGenerationOptions { ModelId = "embed" }.WithGatewayContext(context));

    [Fact]
    public async Task Generate_UpstreamCoolingDownAfterChat429_SkipsItAndServesFromFallback()
    {
        _chatA.GetResponseAsyncCallback = (_, _, _) =>
            throw new GatewayException(GatewayErrorKind.RateLimited, "slow", "upstream_rate_limited") { RetryAfter = TimeSpan.FromSeconds(10) };
        var chat = new CapacityChatClient(_models, _time, cooldowns: _cooldowns);
        await Assert.ThrowsAsync<GatewayException>(() => chat.GetResponseAsync([new ChatMessage(ChatRole.User, "x")], new ChatOptions { ModelId = "chat" }));
        var context = new GatewayContext();

        await EmbedAsync(context);

        Assert.Equal(["b/b-1"], _embeddedBy);
        Assert.Equal([new UpstreamAttempt("embed", "a", "skipped_cooling_down"), new UpstreamAttempt("embed-b", "b", "ok")], context.Attempts);
        Assert.Equal("embed-b", context.ServedModel);
    }

    [Fact]
    public async Task Generate_PrimaryRateLimited_FallsBackAndCoolsDownUntilRetryAfter()
    {
        _failure = by => by == "a/shared-1"
            ? new GatewayException(GatewayErrorKind.RateLimited, "slow", "upstream_rate_limited") { RetryAfter = TimeSpan.FromSeconds(10) }
            : null;

        await EmbedAsync(new GatewayContext());
        var during = new GatewayContext();
        await EmbedAsync(during);
        _time.Advance(TimeSpan.FromSeconds(11));
        await EmbedAsync(new GatewayContext());

        Assert.Equal(["a/shared-1", "b/b-1", "b/b-1", "a/shared-1", "b/b-1"], _embeddedBy);
        Assert.Equal("skipped_cooling_down", during.Attempts[0].Outcome);
    }

    [Fact]
    public async Task Generate_InvalidRequestFromPrimary_DoesNotFallBack()
    {
        _failure = by => by == "a/shared-1" ? GatewayException.InvalidRequest("bad") : null;

        var error = await Assert.ThrowsAsync<GatewayException>(() => EmbedAsync(new GatewayContext()));

        Assert.Equal(GatewayErrorKind.InvalidRequest, error.Kind);
        Assert.Equal(["a/shared-1"], _embeddedBy);
    }

    private sealed class CallbackGenerator(string provider, string upstream, CapacityEmbeddingGeneratorTests test) : IEmbeddingGenerator<string, Embedding<float>>
    {
        public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
        {
            var by = $"{provider}/{upstream}";
            test._embeddedBy.Add(by);
            if (test._failure(by) is { } failure)
            {
                throw failure;
            }
            return Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(_ => new Embedding<float>(new float[] { 1, 0 }))));
        }

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
