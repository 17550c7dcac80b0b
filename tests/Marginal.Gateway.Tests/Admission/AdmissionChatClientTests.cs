using Marginal.Core.Budgets;
using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Economics.Plans;
using Marginal.Gateway.Admission;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
using Marginal.Gateway.Providers;
using Marginal.Testing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Time.Testing;

namespace Marginal.Gateway.Tests.Admission;

public sealed class AdmissionChatClientTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 15, TimeSpan.Zero));
    private readonly TestChatClient _inner = new();
    private readonly InProcessLimitCounters _counters;
    private readonly AdmissionChatClient _client;
    private int _calls;

    public AdmissionChatClientTests()
    {
        var config = ConfigLoader.Parse("""
            providers:
              a: { kind: openai }
            models:
              main: { provider: a, upstream: a-1 }
            """, "test.yaml");
        var models = new GatewayModelSource(GatewayModel.Assemble(config, new Dictionary<string, UpstreamProvider> { ["a"] = new("a", "openai", _inner, null) }));
        // The tenant allows 2 requests and 1000 tokens a minute; its key 5 requests: the tenant's window is the tighter.
        var billing = new BillingModel(
            new Dictionary<string, PricingPlan>(),
            null,
            new Dictionary<string, (PricingPlan?, Allowance)> { ["acme"] = (null, new Allowance(null, null, Rpm: 2, Tpm: 1000)) },
            new Dictionary<string, Allowance> { ["k1"] = new(null, null, Rpm: 5, Tpm: null) });
        _counters = new InProcessLimitCounters(_time);
        _client = new AdmissionChatClient(_inner, new AdmissionPolicy(models, billing, new TenantAccounts(() => billing), _counters, _time, defaultMaxOutputTokens: 100));
        _inner.GetResponseAsyncCallback = (_, options, _) =>
        {
            _calls++;
            options.GetGatewayContext()!.Usage = new UsageDetails { InputTokenCount = 7, OutputTokenCount = 3 };
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "hi")));
        };
    }

    private static GatewayContext Context(bool deferred = false) => new() { Tenant = "acme", KeyId = "k1", Deferred = deferred };

    private Task<ChatResponse> CallAsync(GatewayContext context) =>
        _client.GetResponseAsync([new ChatMessage(ChatRole.User, "hello")], new ChatOptions { ModelId = "main" }.WithGatewayContext(context));

    [Fact]
    public async Task GetResponse_UnderLimits_SetsTheTightestWindowsAsOutcome()
    {
        var context = Context();

        await CallAsync(context);

        Assert.Equal(new RateLimitWindow(2, 1, TimeSpan.FromSeconds(45)), context.Admission!.Requests);
        Assert.Equal(1000, context.Admission.Tokens!.Value.Limit);
        Assert.Null(context.Admission.FreeTierModel);
    }

    [Fact]
    public async Task GetResponse_PastRequestsPerMinute_RefusesWithTheWindowSet()
    {
        await CallAsync(Context());
        await CallAsync(Context());
        var refused = Context();

        var error = await Assert.ThrowsAsync<GatewayException>(() => CallAsync(refused));

        Assert.Equal(GatewayErrorKind.RateLimited, error.Kind);
        Assert.Equal(TimeSpan.FromSeconds(45), error.RetryAfter);
        Assert.Equal(new RateLimitWindow(2, 0, TimeSpan.FromSeconds(45)), refused.Admission!.Requests);
        Assert.Equal(2, _calls);
    }

    [Fact]
    public async Task GetResponse_Answered_SettlesTheTokenReservationToTheUsage()
    {
        await CallAsync(Context());

        // Reserved: the prompt plus max_tokens (the default 100); settled: the 10 tokens the answer used.
        Assert.Equal(10m, await _counters.ReadAsync(CounterKind.Tokens, "tpm:t:acme:" + (_time.GetUtcNow().AddSeconds(45).ToUnixTimeSeconds() / 60)));
    }

    [Fact]
    public async Task GetResponse_DeferredJob_IsNotAdmitted()
    {
        var contexts = new[] { Context(deferred: true), Context(deferred: true), Context(deferred: true) };

        foreach (var context in contexts)
        {
            await CallAsync(context);
        }

        Assert.Equal(3, _calls);
        Assert.All(contexts, c => Assert.Null(c.Admission));
    }
}
