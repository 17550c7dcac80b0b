using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Gateway.Capacity;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
using Marginal.Gateway.Providers;
using Marginal.Testing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Time.Testing;

namespace Marginal.Gateway.Tests.Capacity;

public sealed class CapacityChatClientTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));
    private readonly TestChatClient _a = new();
    private readonly TestChatClient _b = new();

    private CapacityChatClient Create()
    {
        var config = ConfigLoader.Parse("""
            providers:
              a: { kind: openai }
              b: { kind: openai }
            models:
              main: { provider: a, upstream: a-1, fallbacks: [backup] }
              backup: { provider: b, upstream: b-1 }
            """, "test.yaml");
        var model = GatewayModel.Assemble(config, new Dictionary<string, UpstreamProvider>
        {
            ["a"] = new("a", "openai", _a, null),
            ["b"] = new("b", "openai", _b, null),
        });
        return new CapacityChatClient(new GatewayModelSource(model), _time);
    }

    private static ChatOptions Options(GatewayContext context) => new ChatOptions { ModelId = "main" }.WithGatewayContext(context);

    [Fact]
    public async Task GetResponse_PrimaryOk_UsesUpstreamIdAndRecordsAttempt()
    {
        string? sentModel = null;
        _a.GetResponseAsyncCallback = (_, o, _) => { sentModel = o!.ModelId; return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "hi"))); };
        var context = new GatewayContext();

        await Create().GetResponseAsync([new ChatMessage(ChatRole.User, "x")], Options(context));

        Assert.Equal("a-1", sentModel);
        Assert.Equal("main", context.ServedModel);
        Assert.Equal([new UpstreamAttempt("main", "a", "ok")], context.Attempts);
    }

    [Fact]
    public async Task GetResponse_PrimaryRateLimited_FallsBackAndCoolsDownUntilRetryAfter()
    {
        var calls = 0;
        _a.GetResponseAsyncCallback = (_, _, _) =>
        {
            calls++;
            throw new GatewayException(GatewayErrorKind.RateLimited, "slow", "upstream_rate_limited") { RetryAfter = TimeSpan.FromSeconds(10) };
        };
        _b.GetResponseAsyncCallback = (_, _, _) => Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "from b")));
        var client = Create();

        await client.GetResponseAsync([new ChatMessage(ChatRole.User, "x")], Options(new GatewayContext()));
        var during = new GatewayContext();
        await client.GetResponseAsync([new ChatMessage(ChatRole.User, "x")], Options(during));
        _time.Advance(TimeSpan.FromSeconds(11));
        await client.GetResponseAsync([new ChatMessage(ChatRole.User, "x")], Options(new GatewayContext()));

        Assert.Equal(2, calls);
        Assert.Equal("skipped_cooling_down", during.Attempts[0].Outcome);
        Assert.Equal("backup", during.ServedModel);
    }

    [Fact]
    public async Task GetResponse_InvalidRequestFromPrimary_DoesNotFallBack()
    {
        _a.GetResponseAsyncCallback = (_, _, _) => throw GatewayException.InvalidRequest("bad");
        var fallbackCalled = false;
        _b.GetResponseAsyncCallback = (_, _, _) => { fallbackCalled = true; return Task.FromResult(new ChatResponse()); };

        var error = await Assert.ThrowsAsync<GatewayException>(() => Create().GetResponseAsync([new ChatMessage(ChatRole.User, "x")], Options(new GatewayContext())));

        Assert.Equal(GatewayErrorKind.InvalidRequest, error.Kind);
        Assert.False(fallbackCalled);
    }

    [Fact]
    public async Task GetStreamingResponse_FailureAfterFirstUpdate_PropagatesWithoutFallback()
    {
        _a.GetStreamingResponseAsyncCallback = (_, _, _) => FailAfterOne();
        var fallbackCalled = false;
        _b.GetStreamingResponseAsyncCallback = (_, _, _) => { fallbackCalled = true; return Empty(); };
        var received = new List<string>();

        var error = await Assert.ThrowsAsync<GatewayException>(async () =>
        {
            await foreach (var update in Create().GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "x")], Options(new GatewayContext())))
            {
                received.Add(update.Text);
            }
        });

        Assert.Equal(["first"], received);
        Assert.Equal("upstream_connection_lost", error.Code);
        Assert.False(fallbackCalled);
    }

    [Fact]
    public async Task GetStreamingResponse_FailureBeforeFirstUpdate_FallsBack()
    {
        _a.GetStreamingResponseAsyncCallback = (_, _, _) => throw new HttpRequestException("refused");
        _b.GetStreamingResponseAsyncCallback = (_, _, _) => Finished("from b");
        var received = new List<string>();

        await foreach (var update in Create().GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "x")], Options(new GatewayContext())))
        {
            received.Add(update.Text);
        }

        Assert.Equal(["from b"], received);
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> FailAfterOne()
    {
        yield return new ChatResponseUpdate(ChatRole.Assistant, "first");
        await Task.Yield();
        throw new IOException("reset");
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> Finished(string text)
    {
        await Task.Yield();
        yield return new ChatResponseUpdate(ChatRole.Assistant, text) { FinishReason = ChatFinishReason.Stop };
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> Empty()
    {
        await Task.Yield();
        yield break;
    }

    // An allocation failure while a request is copied or serialised is the gateway's own: never classified as the
    // provider's (a 502 blaming it), never failed over (the next provider needs the same memory).
#pragma warning disable CA2201 // The tests throw what the runtime throws when an allocation fails.
    [Fact]
    public async Task GetResponse_OutOfMemoryWhileSerialising_ReachesTheServerUnclassified_NoFallback()
    {
        _a.GetResponseAsyncCallback = (_, _, _) => throw new OutOfMemoryException();
        var fallbacks = 0;
        _b.GetResponseAsyncCallback = (_, _, _) => { fallbacks++; return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "b"))); };
        var context = new GatewayContext();

        await Assert.ThrowsAsync<OutOfMemoryException>(() => Create().GetResponseAsync([new ChatMessage(ChatRole.User, "x")], Options(context)));

        Assert.Equal(0, fallbacks);
        Assert.Empty(context.Attempts);
    }

    [Fact]
    public async Task Stream_OutOfMemoryWhileSerialising_ReachesTheServerUnclassified_NoFallback()
    {
        _a.GetStreamingResponseAsyncCallback = (_, _, _) => throw new OutOfMemoryException();
        var fallbacks = 0;
        _b.GetStreamingResponseAsyncCallback = (_, _, _) => { fallbacks++; return Finished("b"); };
        var context = new GatewayContext();

        await Assert.ThrowsAsync<OutOfMemoryException>(async () =>
        {
            await foreach (var _ in Create().GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "x")], Options(context)))
            {
            }
        });

        Assert.Equal(0, fallbacks);
        Assert.Empty(context.Attempts);
    }
#pragma warning restore CA2201
}
