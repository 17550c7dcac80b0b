using System.Text.Json.Nodes;
using Marginal.Gateway.Deferral;

namespace Marginal.Gateway.Tests.Deferral;

public sealed class AnthropicBatchApiTests
{
    private static JsonObject Message(string content, string stopReason) => JsonNode.Parse($$$"""
        {"id":"msg_1","type":"message","role":"assistant","model":"claude-up","content":{{{content}}},"stop_reason":"{{{stopReason}}}",
         "usage":{"input_tokens":10,"cache_read_input_tokens":4,"cache_creation_input_tokens":2,"output_tokens":7}}
        """)!.AsObject();

    [Fact]
    public void CompletionOf_TextAndTwoToolUses_KeepsTheTextAndMapsEachCallWithItsInputAsArguments()
    {
        var message = Message("""
            [{"type":"text","text":"Checking both."},
             {"type":"tool_use","id":"toolu_a","name":"get_weather","input":{"city":"Paris"}},
             {"type":"tool_use","id":"toolu_b","name":"get_time","input":{}}]
            """, "tool_use");

        var completion = AnthropicBatchApi.CompletionOf(message);

        var choice = completion["choices"]![0]!;
        Assert.Equal("tool_calls", choice["finish_reason"]!.GetValue<string>());
        Assert.Equal("Checking both.", choice["message"]!["content"]!.GetValue<string>());
        var calls = choice["message"]!["tool_calls"]!.AsArray();
        Assert.Equal(["toolu_a", "toolu_b"], calls.Select(c => c!["id"]!.GetValue<string>()));
        Assert.Equal(["get_weather", "get_time"], calls.Select(c => c!["function"]!["name"]!.GetValue<string>()));
        Assert.Equal("Paris", JsonNode.Parse(calls[0]!["function"]!["arguments"]!.GetValue<string>())!["city"]!.GetValue<string>());
        Assert.Equal("{}", calls[1]!["function"]!["arguments"]!.GetValue<string>());
    }

    [Fact]
    public void CompletionOf_TextOnly_HasNoToolCallsAndCountsCachedTokensInThePrompt()
    {
        var completion = AnthropicBatchApi.CompletionOf(Message("""[{"type":"text","text":"Hi."}]""", "end_turn"));

        var choice = completion["choices"]![0]!;
        Assert.Equal(("stop", "Hi."), (choice["finish_reason"]!.GetValue<string>(), choice["message"]!["content"]!.GetValue<string>()));
        Assert.Null(choice["message"]!["tool_calls"]);
        // Anthropic's input_tokens exclude cache reads and writes; OpenAI's prompt_tokens include them: 10 + 4 + 2.
        Assert.Equal((16, 4, 7), (completion["usage"]!["prompt_tokens"]!.GetValue<long>(),
            completion["usage"]!["prompt_tokens_details"]!["cached_tokens"]!.GetValue<long>(), completion["usage"]!["completion_tokens"]!.GetValue<long>()));
    }
}
