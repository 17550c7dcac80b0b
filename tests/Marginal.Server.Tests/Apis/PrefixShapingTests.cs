using System.Text.Json.Nodes;
using OpenAI.Chat;
using Xunit.Abstractions;

namespace Marginal.Server.Tests.Apis;

/// <summary>Prefix-aware shaping through the gateway: tools sorted by name, messages untouched, per-model opt-out.</summary>
public sealed class PrefixShapingTests(ITestOutputHelper output)
{
    private static ChatTool Tool(string name, string description = "A tool.") =>
        ChatTool.CreateFunctionTool(name, description, BinaryData.FromString("""{"type":"object","properties":{"q":{"type":"string"}}}"""));

    private static string ExcludeSolo(Testing.FakeUpstream p, Testing.FakeUpstream s) =>
        GatewayHost.DefaultYaml(p, s, "shaping:\n  exclude_models: [gpt-solo]");

    private static List<string> ToolNames(JsonNode sent) =>
        [.. sent["tools"]!.AsArray().Select(t => t!["function"]!["name"]!.GetValue<string>())];

    [Fact]
    public async Task CompleteChat_ToolsInClientOrder_ReachUpstreamSortedWithMessagesUntouched()
    {
        await using var host = await GatewayHost.StartAsync(ExcludeSolo);
        var options = new ChatCompletionOptions { Tools = { Tool("search"), Tool("add"), Tool("lookup") } };
        List<ChatMessage> messages = [new SystemChatMessage("Be brief."), new SystemChatMessage("Answer in French."), new UserChatMessage("bonjour"), new AssistantChatMessage("salut"), new UserChatMessage("ça va")];

        await host.OpenAI.GetChatClient("gpt-test").CompleteChatAsync(messages, options);

        var sent = host.Primary.Requests.Last().Json!;
        Assert.Equal(["add", "lookup", "search"], ToolNames(sent));
        var roles = sent["messages"]!.AsArray().Select(m => m!["role"]!.GetValue<string>()).ToList();
        var texts = sent["messages"]!.AsArray().Select(m => Testing.FakeUpstream.ContentTextOf(m!["content"])).ToList();
        Assert.Equal(["system", "system", "user", "assistant", "user"], roles);
        Assert.Equal(["Be brief.", "Answer in French.", "bonjour", "salut", "ça va"], texts);
    }

    [Fact]
    public async Task CompleteChat_SameToolsInAnyOrder_SendByteIdenticalToolsUpstream()
    {
        await using var host = await GatewayHost.StartAsync(ExcludeSolo);
        var chat = host.OpenAI.GetChatClient("gpt-test");

        await chat.CompleteChatAsync([new UserChatMessage("one")], new ChatCompletionOptions { Tools = { Tool("b"), Tool("c"), Tool("a") } });
        await chat.CompleteChatAsync([new UserChatMessage("two")], new ChatCompletionOptions { Tools = { Tool("c"), Tool("a"), Tool("b") } });

        var sent = host.Primary.Requests.Select(r => r.Json!["tools"]!.ToJsonString()).ToList();
        Assert.Equal(2, sent.Count);
        Assert.Equal(sent[0], sent[1]);
    }

    [Fact]
    public async Task CompleteChat_ModelExcludedFromShaping_KeepsClientToolOrder()
    {
        await using var host = await GatewayHost.StartAsync(ExcludeSolo);

        await host.OpenAI.GetChatClient("gpt-solo").CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { Tools = { Tool("search"), Tool("add") } });

        Assert.Equal(["search", "add"], ToolNames(host.Primary.Requests.Last().Json!));
    }

    /// <summary>
    /// The measurement behind docs/benchmarks.md, "Prefix shaping": a seeded workload of 40 requests carrying the same
    /// 12 tools (~1,900 prompt tokens of definitions) in a shuffled order and a distinct question each, through the
    /// gateway to a FakeUpstream that emulates OpenAI's prompt cache; with and without tool sorting. Cached share and
    /// cost come from the ledger.
    /// </summary>
    [Fact]
    public async Task Workload_ShuffledToolOrder_ShapingRaisesCachedShareAndLowersCost()
    {
        var (shapedShare, shapedCost) = await RunWorkloadAsync(sortTools: true);
        var (plainShare, plainCost) = await RunWorkloadAsync(sortTools: false);

        output.WriteLine($"sorted tools: cached share {shapedShare:P1}, cost {shapedCost} USD; client order: cached share {plainShare:P1}, cost {plainCost} USD; cost ratio {shapedCost / plainCost:F3}");
        Assert.True(shapedShare > 0.8, $"shaped cached share {shapedShare:P1}");
        Assert.True(plainShare < 0.2, $"unshaped cached share {plainShare:P1}");
        Assert.True(shapedCost < plainCost);
    }

    private static async Task<(double CachedShare, decimal Cost)> RunWorkloadAsync(bool sortTools)
    {
        await using var host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, $"shaping:\n  sort_tools: {(sortTools ? "true" : "false")}"));
        host.Primary.EmulatePromptCache = true;
        var random = new Random(7);
        var words = "the account invoice customer region order status refund shipment payment address product quantity price discount tax currency date".Split(' ');
        var tools = Enumerable.Range(0, 12)
            .Select(i => Tool($"tool_{(char)('a' + i)}", string.Join(' ', Enumerable.Range(0, 120).Select(_ => words[random.Next(words.Length)]))))
            .ToArray();
        var chat = host.OpenAI.GetChatClient("gpt-test");
        for (var i = 0; i < 40; i++)
        {
            var options = new ChatCompletionOptions { ToolChoice = ChatToolChoice.CreateNoneChoice() };
            foreach (var tool in tools.OrderBy(_ => random.Next()))
            {
                options.Tools.Add(tool);
            }
            await chat.CompleteChatAsync([new UserChatMessage($"question number {i} about {words[random.Next(words.Length)]}")], options);
        }
        var records = await host.Ledger.ReadAsync().ToListAsync();
        return ((double)records.Sum(r => r.CachedInputTokens) / records.Sum(r => r.InputTokens), records.Sum(r => r.CostUsd ?? 0m));
    }
}
