using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marginal.Core.Errors;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Gateway.Wire.Anthropic;
using Marginal.Gateway.Wire.Responses;
using Microsoft.Extensions.AI;

namespace Marginal.Server.Tests.Wire;

/// <summary>
/// The Responses and Messages dialects translated into the chat request the gateway serves, and the answer written
/// back in each dialect: item and block order, tool round trips, usage splits, and a 400 naming every field the gateway
/// cannot honour.
/// </summary>
public sealed class DialectTranslationTests
{
    private static ResponsesCall Responses(string json) => ResponsesRequestReader.Read(Encoding.UTF8.GetBytes(json));

    private static MessagesCall Messages(string json, bool countOnly = false) => MessagesRequestReader.Read(Encoding.UTF8.GetBytes(json), countOnly);

    [Fact]
    public void Responses_StringInputWithInstructions_IsSystemThenUser()
    {
        var call = Responses("""{"model":"gpt-test","instructions":"Be brief.","input":"Hi","max_output_tokens":50,"temperature":0.3}""");
        var (messages, options) = ChatRequestReader.ToChat(call.Chat);
        Assert.Equal([ChatRole.System, ChatRole.User], messages.Select(m => m.Role));
        Assert.Equal("Be brief.", messages[0].Text);
        Assert.Equal("Hi", messages[1].Text);
        Assert.Equal(50, options.MaxOutputTokens);
        Assert.Equal(0.3f, options.Temperature);
    }

    [Fact]
    public void Responses_FunctionCallItems_JoinTheAssistantTurnAndOutputsBecomeToolMessages()
    {
        var call = Responses("""
            {"model":"gpt-test","input":[
              {"role":"user","content":[{"type":"input_text","text":"Weather in Paris?"}]},
              {"type":"function_call","call_id":"call_1","name":"weather","arguments":"{\"city\":\"Paris\"}"},
              {"type":"function_call","call_id":"call_2","name":"time","arguments":"{}"},
              {"type":"function_call_output","call_id":"call_1","output":"18C"},
              {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"noon"}]}],
             "tools":[{"type":"function","name":"weather","parameters":{"type":"object"},"strict":true}],
             "tool_choice":{"type":"function","name":"weather"}}
            """);
        var (messages, options) = ChatRequestReader.ToChat(call.Chat);
        Assert.Equal([ChatRole.User, ChatRole.Assistant, ChatRole.Tool, ChatRole.Tool], messages.Select(m => m.Role));
        var calls = messages[1].Contents.OfType<FunctionCallContent>().ToList();
        Assert.Equal(["call_1", "call_2"], calls.Select(c => c.CallId));
        Assert.Equal("Paris", calls[0].Arguments!["city"]!.ToString());
        Assert.Equal("noon", messages[3].Contents.OfType<FunctionResultContent>().Single().Result!.ToString());
        Assert.Equal("weather", Assert.IsType<AIFunctionDeclaration>(options.Tools!.Single(), exactMatch: false).Name);
        Assert.Equal(ChatToolMode.RequireSpecific("weather"), options.ToolMode);
    }

    [Fact]
    public void Responses_JsonSchemaFormat_KeepsNameSchemaAndStrict()
    {
        var call = Responses("""{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"city","schema":{"type":"object","properties":{"n":{"type":"string"}}},"strict":true}}}""");
        Assert.Equal("json_schema", call.Chat.ResponseFormat!.Type);
        Assert.Equal("city", call.Chat.ResponseFormat.JsonSchema!.Name);
        Assert.True(call.Chat.ResponseFormat.JsonSchema.Strict);
        Assert.Equal("object", call.Chat.ResponseFormat.JsonSchema.Schema!.Value.GetProperty("type").GetString());
    }

    [Theory]
    [InlineData("""{"model":"m","input":"x","store":true}""", "store")]
    [InlineData("""{"model":"m","input":"x","previous_response_id":"resp_1"}""", "previous_response_id")]
    [InlineData("""{"model":"m","input":"x","tools":[{"type":"web_search"}]}""", "tools[0].type")]
    [InlineData("""{"model":"m","input":"x","background":true}""", "background")]
    [InlineData("""{"model":"m","input":"x","reasoning":{"effort":"low","summary":"auto"}}""", "reasoning.summary")]
    [InlineData("""{"model":"m","input":"x","include":["reasoning.encrypted_content"]}""", "include")]
    [InlineData("""{"model":"m","input":"x","prompt_cache_key":"k"}""", "prompt_cache_key")]
    [InlineData("""{"model":"m","input":[{"type":"reasoning","summary":[]}]}""", "input[0].type")]
    [InlineData("""{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}""", "input[0].content[0].type")]
    [InlineData("""{"model":"m","input":"x","text":{"verbosity":"low"}}""", "text.verbosity")]
    [InlineData("""{"model":"m"}""", "input")]
    public void Responses_WhatTheGatewayCannotHonour_IsA400NamingIt(string body, string param)
    {
        var error = Assert.Throws<GatewayException>(() => Responses(body));
        Assert.Equal(GatewayErrorKind.InvalidRequest, error.Kind);
        Assert.Equal(param, error.Param);
    }

    [Fact]
    public void Responses_StoreFalseAndEmptyInclude_AreAccepted()
    {
        var call = Responses("""{"model":"m","input":"x","store":false,"include":[],"truncation":"disabled","service_tier":"auto"}""");
        Assert.Equal("m", call.Chat.Model);
    }

    [Fact]
    public void Responses_ChatReaderErrors_NameTheResponsesField()
    {
        var call = Responses("""{"model":"m","input":"x","max_output_tokens":0}""");
        var error = Assert.Throws<GatewayException>(() => ChatRequestReader.ToChat(call.Chat));
        Assert.Equal("max_output_tokens", ResponsesRequestReader.Rename(error).Param);
    }

    [Fact]
    public void Responses_NonStreamedAnswer_HasMessageThenCallsAndUsageDetails()
    {
        var call = Responses("""{"model":"auto","input":"x","metadata":{"team":"a"}}""");
        var response = new ChatResponse(new ChatMessage(ChatRole.Assistant,
            [new TextContent("Hello"), new FunctionCallContent("call_9", "weather", new Dictionary<string, object?> { ["city"] = "Oslo" })]))
        {
            FinishReason = ChatFinishReason.ToolCalls,
            Usage = new UsageDetails { InputTokenCount = 100, OutputTokenCount = 20, CachedInputTokenCount = 60, ReasoningTokenCount = 5 },
        };
        using var writer = new ResponsesWriter("auto", call.Echo, DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));
        var buffer = new ArrayBufferWriter<byte>();
        writer.WriteResponse(buffer, response);
        var json = JsonNode.Parse(buffer.WrittenSpan)!;
        Assert.Equal("response", (string?)json["object"]);
        Assert.Equal("completed", (string?)json["status"]);
        Assert.Equal("auto", (string?)json["model"]);
        var output = json["output"]!.AsArray();
        Assert.Equal(["message", "function_call"], output.Select(o => (string?)o!["type"]));
        Assert.Equal("Hello", (string?)output[0]!["content"]![0]!["text"]);
        Assert.Equal("call_9", (string?)output[1]!["call_id"]);
        Assert.Equal("Oslo", (string?)JsonNode.Parse((string)output[1]!["arguments"]!)!["city"]);
        Assert.Equal(60, (int)json["usage"]!["input_tokens_details"]!["cached_tokens"]!);
        Assert.Equal(5, (int)json["usage"]!["output_tokens_details"]!["reasoning_tokens"]!);
        Assert.Equal(120, (int)json["usage"]!["total_tokens"]!);
        Assert.Equal("a", (string?)json["metadata"]!["team"]);
    }

    [Fact]
    public void Responses_Stream_EventsAreOrderedAndNumbered()
    {
        var call = Responses("""{"model":"m","input":"x","stream":true}""");
        Assert.True(call.Chat.StreamOptions!.IncludeUsage);
        using var writer = new ResponsesWriter("m", call.Echo, DateTimeOffset.UnixEpoch);
        var buffer = new ArrayBufferWriter<byte>();
        writer.Start(buffer);
        writer.Write(buffer, new ChatResponseUpdate(ChatRole.Assistant, "Hel"));
        writer.Write(buffer, new ChatResponseUpdate(ChatRole.Assistant, "lo"));
        writer.Write(buffer, new ChatResponseUpdate(ChatRole.Assistant, [new FunctionCallContent("c1", "f", new Dictionary<string, object?>())]));
        writer.Complete(buffer, ChatFinishReason.ToolCalls, new UsageDetails { InputTokenCount = 3, OutputTokenCount = 4 });
        var events = Events(buffer);
        Assert.Equal(
        [
            "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
            "response.output_text.delta", "response.output_text.delta", "response.output_text.done", "response.content_part.done",
            "response.output_item.done", "response.output_item.added", "response.function_call_arguments.delta",
            "response.function_call_arguments.done", "response.output_item.done", "response.completed",
        ], events.Select(e => e.Name));
        Assert.Equal(Enumerable.Range(0, events.Count), events.Select(e => (int)e.Data["sequence_number"]!));
        Assert.All(events, e => Assert.Equal(e.Name, (string?)e.Data["type"]));
        var completed = events[^1].Data["response"]!;
        Assert.Equal("Hello", (string?)completed["output"]![0]!["content"]![0]!["text"]);
        Assert.Equal(1, (int)events[9].Data["output_index"]!);
        Assert.Equal(7, (int)completed["usage"]!["total_tokens"]!);
    }

    [Fact]
    public void Responses_LengthFinish_IsIncomplete()
    {
        var call = Responses("""{"model":"m","input":"x","stream":true}""");
        using var writer = new ResponsesWriter("m", call.Echo, DateTimeOffset.UnixEpoch);
        var buffer = new ArrayBufferWriter<byte>();
        writer.Start(buffer);
        writer.Write(buffer, new ChatResponseUpdate(ChatRole.Assistant, "cut"));
        writer.Complete(buffer, ChatFinishReason.Length, null);
        var last = Events(buffer)[^1];
        Assert.Equal("response.incomplete", last.Name);
        Assert.Equal("max_output_tokens", (string?)last.Data["response"]!["incomplete_details"]!["reason"]);
    }

    [Fact]
    public void Messages_ToolRoundTrip_BecomesChatToolCallsAndToolMessages()
    {
        var call = Messages("""
            {"model":"claude-test","max_tokens":100,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
             "messages":[
               {"role":"user","content":"Weather in Paris?"},
               {"role":"assistant","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}}]},
               {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},{"type":"text","text":"And tomorrow?"}]}],
             "tools":[{"name":"weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
             "tool_choice":{"type":"any","disable_parallel_tool_use":true},"stop_sequences":["END"],"metadata":{"user_id":"u1"}}
            """);
        var (messages, options) = ChatRequestReader.ToChat(call.Chat);
        Assert.Equal([ChatRole.System, ChatRole.User, ChatRole.Assistant, ChatRole.Tool, ChatRole.User], messages.Select(m => m.Role));
        Assert.Equal("Be brief.", messages[0].Text);
        Assert.Equal("Paris", messages[2].Contents.OfType<FunctionCallContent>().Single().Arguments!["city"]!.ToString());
        Assert.Equal("toolu_1", messages[3].Contents.OfType<FunctionResultContent>().Single().CallId);
        Assert.Equal(ChatToolMode.RequireAny, options.ToolMode);
        Assert.False(options.AllowMultipleToolCalls);
        Assert.Equal(["END"], options.StopSequences!);
        Assert.Equal(100, options.MaxOutputTokens);
        Assert.Equal("u1", call.Chat.User);
    }

    [Fact]
    public void Messages_Base64Image_BecomesADataUrl()
    {
        var call = Messages("""{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},{"type":"text","text":"What is this?"}]}]}""");
        var parts = call.Chat.Messages![0].Content!.Parts!;
        Assert.Equal("data:image/png;base64,iVBORw0KGgo=", parts[0].ImageUrl!.Url);
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x"}]}""", "max_tokens")]
    [InlineData("""{"model":"m","max_tokens":5,"top_k":5,"messages":[{"role":"user","content":"x"}]}""", "top_k")]
    [InlineData("""{"model":"m","max_tokens":5,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"x"}]}""", "thinking")]
    [InlineData("""{"model":"m","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"x"}]}""", "tools.0.type")]
    [InlineData("""{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}""", "messages.0.content.0.type")]
    [InlineData("""{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"…"}]}]}""", "messages.0.content.0.type")]
    [InlineData("""{"model":"m","max_tokens":5,"temperature":1.5,"messages":[{"role":"user","content":"x"}]}""", "temperature")]
    public void Messages_WhatTheGatewayCannotHonour_IsA400NamingIt(string body, string param)
    {
        var error = Assert.Throws<GatewayException>(() => Messages(body));
        Assert.Equal(GatewayErrorKind.InvalidRequest, error.Kind);
        Assert.Equal(param, error.Param);
    }

    [Fact]
    public void Messages_CountTokensBody_NeedsNoMaxTokens()
    {
        var call = Messages("""{"model":"m","messages":[{"role":"user","content":"x"}]}""", countOnly: true);
        Assert.Null(call.Chat.MaxTokens);
    }

    [Fact]
    public void Messages_Answer_SplitsCachedInputTheAnthropicWay()
    {
        var response = new ChatResponse(new ChatMessage(ChatRole.Assistant,
            [new TextContent("Hi"), new FunctionCallContent("toolu_2", "f", new Dictionary<string, object?> { ["a"] = 1 })]))
        {
            Usage = new UsageDetails
            {
                InputTokenCount = 1000, OutputTokenCount = 7, CachedInputTokenCount = 600,
                AdditionalCounts = new() { [Marginal.Core.Pricing.TokenUsage.CacheWriteTokensKey] = 300 },
            },
        };
        using var writer = new MessagesWriter("claude-test");
        var buffer = new ArrayBufferWriter<byte>();
        writer.WriteMessage(buffer, response);
        var json = JsonNode.Parse(buffer.WrittenSpan)!;
        Assert.Equal(["text", "tool_use"], json["content"]!.AsArray().Select(b => (string?)b!["type"]));
        Assert.Equal(1, (int)json["content"]![1]!["input"]!["a"]!);
        Assert.Equal("tool_use", (string?)json["stop_reason"]);
        Assert.Equal(100, (int)json["usage"]!["input_tokens"]!);
        Assert.Equal(600, (int)json["usage"]!["cache_read_input_tokens"]!);
        Assert.Equal(300, (int)json["usage"]!["cache_creation_input_tokens"]!);
    }

    [Fact]
    public void Messages_Stream_FollowsAnthropicsEventSequence()
    {
        using var writer = new MessagesWriter("claude-test");
        var buffer = new ArrayBufferWriter<byte>();
        writer.Start(buffer);
        writer.Write(buffer, new ChatResponseUpdate(ChatRole.Assistant, "Hi"));
        writer.Write(buffer, new ChatResponseUpdate(ChatRole.Assistant, [new FunctionCallContent("toolu_3", "f", new Dictionary<string, object?> { ["a"] = 1 })]));
        writer.Complete(buffer, ChatFinishReason.ToolCalls, new UsageDetails { InputTokenCount = 10, OutputTokenCount = 4 });
        var events = Events(buffer);
        Assert.Equal(
        [
            "message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop", "content_block_start",
            "content_block_delta", "content_block_stop", "message_delta", "message_stop",
        ], events.Select(e => e.Name));
        Assert.Equal([0, 0, 0, 1, 1, 1], events.Where(e => e.Name.StartsWith("content_block", StringComparison.Ordinal)).Select(e => (int)e.Data["index"]!));
        Assert.Equal("""{"a":1}""", (string?)events[6].Data["delta"]!["partial_json"]);
        Assert.Equal("tool_use", (string?)events[8].Data["delta"]!["stop_reason"]);
        Assert.Equal(4, (int)events[8].Data["usage"]!["output_tokens"]!);
    }

    private static List<(string Name, JsonNode Data)> Events(ArrayBufferWriter<byte> buffer)
    {
        var result = new List<(string, JsonNode)>();
        foreach (var block in Encoding.UTF8.GetString(buffer.WrittenSpan).Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = block.Split('\n');
            Assert.StartsWith("event: ", lines[0], StringComparison.Ordinal);
            Assert.StartsWith("data: ", lines[1], StringComparison.Ordinal);
            result.Add((lines[0]["event: ".Length..], JsonNode.Parse(lines[1]["data: ".Length..])!));
        }
        return result;
    }
}
