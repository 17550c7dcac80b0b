using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Capacity;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Idempotency;
using Marginal.Gateway.Metering;
using Marginal.Gateway.Model;
using Marginal.Gateway.Pipeline;
using Marginal.Gateway.Providers;
using Marginal.Gateway.Routing;
using Marginal.Gateway.Shaping;
using Marginal.Testing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Marginal.Gateway.Tests.Pipeline;

public sealed class GatewayPipelineTests
{
    private readonly TestChatClient _provider = new();

    private GatewayModelSource Models() => new(GatewayModel.Assemble(
        ConfigLoader.Parse("providers:\n  p: { kind: openai }\nmodels:\n  m: { provider: p, upstream: up }\n  e: { provider: p, type: embedding }\n", "t.yaml"),
        new Dictionary<string, UpstreamProvider> { ["p"] = new("p", "openai", _provider, null) }));

    /// <summary>The pipeline as a host builds it, over a container that holds nothing but the models.</summary>
    private IChatClient Pipeline() => new ServiceCollection().AddMarginalGateway(Models()).BuildServiceProvider().GetRequiredService<IChatClient>();

    [Fact]
    public void Build_StagesInFixedOrder_ReplayMeteringCacheRoutingShapingCapacity()
    {
        var pipeline = Pipeline();

        var replay = Assert.IsType<IdempotentReplayChatClient>(pipeline);
        var metering = Assert.IsType<MeteringChatClient>(replay.Inner);
        var cache = Assert.IsType<ResponseCacheChatClient>(metering.Inner);
        var routing = Assert.IsType<ModelRoutingChatClient>(cache.Inner);
        var shaping = Assert.IsType<PrefixShapingChatClient>(routing.Inner);
        Assert.IsType<CapacityChatClient>(shaping.Inner);
    }

    [Fact]
    public async Task GetResponse_ThroughAllStages_ContextFilledAndUsageMetered()
    {
        _provider.GetResponseAsyncCallback = (_, o, _) => Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "ok"))
        {
            Usage = new UsageDetails { InputTokenCount = 3, OutputTokenCount = 1 },
            ModelId = o!.ModelId,
        });
        var context = new GatewayContext();
        var options = new ChatOptions { ModelId = "m" }.WithGatewayContext(context);

        var response = await Pipeline().GetResponseAsync([new ChatMessage(ChatRole.User, "x")], options);

        Assert.Equal("up", response.ModelId);
        Assert.Equal("explicit", context.RouteReason);
        Assert.Equal("m", context.ServedModel);
        Assert.Equal("p", context.Provider);
        Assert.Equal(3, context.Usage!.InputTokenCount);
    }

    [Fact]
    public async Task GetStreamingResponse_UsageUpdate_MeteredIntoContext()
    {
        _provider.GetStreamingResponseAsyncCallback = (_, _, _) => Updates();
        var context = new GatewayContext();

        await foreach (var _ in Pipeline().GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "x")], new ChatOptions { ModelId = "m" }.WithGatewayContext(context)))
        {
        }

        Assert.Equal(9, context.Usage!.OutputTokenCount);
    }

    [Theory]
    [InlineData("nope")]
    [InlineData("e")]
    public async Task GetResponse_UnknownOrNonChatModel_InvalidRequest(string model)
    {
        var error = await Assert.ThrowsAsync<GatewayException>(() =>
            Pipeline().GetResponseAsync([new ChatMessage(ChatRole.User, "x")], new ChatOptions { ModelId = model }));

        Assert.Equal(GatewayErrorKind.NotFound, error.Kind);
        Assert.Equal("model_not_found", error.Code);
        Assert.Equal("model", error.Param);
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> Updates()
    {
        await Task.Yield();
        yield return new ChatResponseUpdate(ChatRole.Assistant, "hi");
        yield return new ChatResponseUpdate { FinishReason = ChatFinishReason.Stop };
        yield return new ChatResponseUpdate { Contents = [new UsageContent(new UsageDetails { InputTokenCount = 2, OutputTokenCount = 9 })] };
    }
}
