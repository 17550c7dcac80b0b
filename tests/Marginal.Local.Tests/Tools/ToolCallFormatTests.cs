using System.Text.Json;
using Marginal.Local.Tools;
using Microsoft.Extensions.AI;

namespace Marginal.Local.Tests.Tools;

public sealed class ToolCallFormatTests
{
    private static readonly AIFunctionDeclaration[] Tools =
    [
        AIFunctionFactory.CreateDeclaration("get_weather", "Weather", JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string"}}}""").RootElement),
    ];

    private static int _ids;

    private static string NewId() => $"call_{Interlocked.Increment(ref _ids)}";

    [Fact]
    public void TryParse_TextThenTwoCallBlocks_TwoCallsWithTheirArguments()
    {
        const string answer = """
            Let me check.
            <tool_call>
            {"name": "get_weather", "arguments": {"city": "Oslo"}}
            </tool_call>
            <tool_call>
            {"name": "get_weather", "arguments": {"city": "Rome"}}
            </tool_call>
            """;

        Assert.True(ToolCallFormat.TryParse(answer, Tools, NewId, out var calls));

        Assert.Equal(["Oslo", "Rome"], calls.Select(c => ((JsonElement)c.Arguments!["city"]!).GetString()));
        Assert.All(calls, c => Assert.Equal("get_weather", c.Name));
    }

    [Theory]
    [InlineData("""<tool_call>{"name": "launch", "arguments": {}}</tool_call>""")]
    [InlineData("""<tool_call>{"name": "get_weather", "arguments": "Oslo"}</tool_call>""")]
    [InlineData("""<tool_call>{"name": "get_weather", "arguments": {"city": "Os""")]
    [InlineData("""no call here""")]
    public void TryParse_NotACallOfAGivenTool_False(string answer)
    {
        Assert.False(ToolCallFormat.TryParse(answer, Tools, NewId, out var calls));
        Assert.Empty(calls);
    }

    [Fact]
    public void Prepare_CallAndResultInHistory_RenderedAsHermesBlocksWithToolsInTheSystemMessage()
    {
        List<ChatMessage> history =
        [
            new(ChatRole.System, "Be brief."),
            new(ChatRole.User, "weather in Oslo"),
            new(ChatRole.Assistant, [new FunctionCallContent("call_1", "get_weather", new Dictionary<string, object?> { ["city"] = "Oslo" })]),
            new(ChatRole.Tool, [new FunctionResultContent("call_1", "-3 C")]),
        ];

        var prepared = ToolCallFormat.Prepare(history, Tools);

        Assert.Equal(4, prepared.Count);
        Assert.StartsWith("Be brief.\n\n# Tools", prepared[0].Text, StringComparison.Ordinal);
        Assert.Contains("""{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":""", prepared[0].Text, StringComparison.Ordinal);
        Assert.Equal("<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}\n</tool_call>", prepared[2].Text);
        Assert.Equal(ChatRole.User, prepared[3].Role);
        Assert.Equal("<tool_response>\n-3 C\n</tool_response>", prepared[3].Text);
    }
}
