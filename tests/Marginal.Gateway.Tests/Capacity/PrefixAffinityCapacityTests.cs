using Marginal.Core.Pricing;
using Marginal.Core.Requests;
using Marginal.Gateway.Capacity;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
using Marginal.Gateway.Providers;
using Marginal.Testing;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Tests.Capacity;

/// <summary>A model served by two owned replicas (a local model whose fallback is the same model on another local provider).</summary>
public sealed class PrefixAffinityCapacityTests
{
    private readonly TestChatClient _one = new();
    private readonly TestChatClient _two = new();
    private readonly List<string> _served = [];

    private CapacityChatClient Create(string secondKind = "local")
    {
        var config = ConfigLoader.Parse($$"""
            providers:
              one: { kind: local, path: m.gguf }
              two: { kind: {{secondKind}}, path: m.gguf }
            models:
              llama: { provider: one, fallbacks: [llama-2] }
              llama-2: { provider: two }
            """, "test.yaml");
        _one.GetResponseAsyncCallback = (_, _, _) => { _served.Add("one"); return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "1"))); };
        _two.GetResponseAsyncCallback = (_, _, _) => { _served.Add("two"); return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "2"))); };
        var model = GatewayModel.Assemble(config, new Dictionary<string, UpstreamProvider>
        {
            ["one"] = new("one", "local", _one, null) { Capacity = CapacityKind.Owned },
            ["two"] = new("two", secondKind, _two, null) { Capacity = secondKind == "local" ? CapacityKind.Owned : CapacityKind.Api },
        });
        return new CapacityChatClient(new GatewayModelSource(model), TimeProvider.System);
    }

    private static List<ChatMessage> Prompt(int system, int question) =>
        [new(ChatRole.System, $"System prompt {system}: " + new string('s', 500)), new(ChatRole.User, $"question {question}")];

    private static ChatOptions Options() => new ChatOptions { ModelId = "llama" }.WithGatewayContext(new GatewayContext());

    [Fact]
    public async Task GetResponse_SameLongPrefix_AlwaysSameReplica()
    {
        var capacity = Create();

        for (var q = 0; q < 20; q++)
        {
            await capacity.GetResponseAsync(Prompt(system: 3, question: q), Options());
        }

        Assert.Single(_served.Distinct());
    }

    [Fact]
    public async Task GetResponse_ManyPrefixes_UseBothReplicas()
    {
        var capacity = Create();

        for (var p = 0; p < 40; p++)
        {
            await capacity.GetResponseAsync(Prompt(system: p, question: 0), Options());
        }

        Assert.InRange(_served.Count(s => s == "one"), 8, 32);
    }

    [Fact]
    public async Task GetResponse_OnlyOneOwnedReplica_KeepsChainOrder()
    {
        var capacity = Create(secondKind: "openai");

        for (var p = 0; p < 20; p++)
        {
            await capacity.GetResponseAsync(Prompt(system: p, question: 0), Options());
        }

        Assert.All(_served, s => Assert.Equal("one", s));
    }
}
