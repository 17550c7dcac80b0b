using System.Text.Json.Nodes;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Apis;

/// <summary>The official OpenAI SDK against the gateway: what it gets must match what the upstream sent.</summary>
public sealed class ChatCompletionsSdkTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task CompleteChat_PlainRequest_ReturnsUpstreamAnswerAndUsage()
    {
        var chat = _host.OpenAI.GetChatClient("gpt-test");

        var completion = (await chat.CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("hello there")])).Value;

        Assert.Equal("Echo: hello there", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("up-model", completion.Model);
        Assert.StartsWith("chatcmpl-fake", completion.Id, StringComparison.Ordinal);
        Assert.Equal(4, completion.Usage.InputTokenCount);
        Assert.Equal(3, completion.Usage.OutputTokenCount);
        Assert.Equal(7, completion.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task CompleteChat_NoTracingConfigured_SendsNoTraceContextUpstream()
    {
        // Without server.otlp_endpoint no activity is started for a request, so none is propagated to the provider.
        await _host.OpenAI.GetChatClient("gpt-test").CompleteChatAsync([new UserChatMessage("untraced")]);

        var headers = _host.Primary.Requests.Last().Headers;
        Assert.False(headers.ContainsKey("traceparent"), "traceparent: " + headers.GetValueOrDefault("traceparent"));
        Assert.False(headers.ContainsKey("request-id"));
    }

    [Fact]
    public async Task CompleteChatStreaming_PlainRequest_StreamsSameTextAndUsage()
    {
        var chat = _host.OpenAI.GetChatClient("gpt-test");
        var text = new System.Text.StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("stream these words please")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        Assert.Equal("Echo: stream these words please", text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.NotNull(usage);
        Assert.Equal(4, usage.InputTokenCount);
        Assert.Equal(5, usage.OutputTokenCount);
    }

    [Fact]
    public async Task CompleteChat_ToolRoundTrip_ReturnsToolCallThenUsesResult()
    {
        var chat = _host.OpenAI.GetChatClient("gpt-test");
        var tool = ChatTool.CreateFunctionTool("lookup", "Looks things up", BinaryData.FromString("""{"type":"object","properties":{"echo":{"type":"string"}}}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        List<ChatMessage> messages = [new UserChatMessage("find cats")];

        var first = (await chat.CompleteChatAsync(messages, options)).Value;

        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("lookup", call.FunctionName);
        Assert.Equal("find cats", JsonNode.Parse(call.FunctionArguments.ToString())!["echo"]!.GetValue<string>());

        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, "42 cats"));
        var second = (await chat.CompleteChatAsync(messages, options)).Value;

        Assert.Equal("Tool said: 42 cats", second.Content[0].Text);
        var sent = _host.Primary.Requests.Last().Json!;
        Assert.Equal("tool", sent["messages"]![2]!["role"]!.GetValue<string>());
        Assert.Equal(call.Id, sent["messages"]![2]!["tool_call_id"]!.GetValue<string>());
        Assert.Equal("lookup", sent["tools"]![0]!["function"]!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task CompleteChatStreaming_ToolCall_StreamsToolCall()
    {
        var chat = _host.OpenAI.GetChatClient("gpt-test");
        var options = new ChatCompletionOptions { Tools = { ChatTool.CreateFunctionTool("lookup", "Looks things up") } };
        var names = new List<string>();
        var arguments = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("find dogs")], options))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                if (call.FunctionName is { } name)
                {
                    names.Add(name);
                }
                arguments.Append(call.FunctionArgumentsUpdate?.ToString());
            }
            finish ??= update.FinishReason;
        }

        Assert.Equal(["lookup"], names);
        Assert.Equal("find dogs", JsonNode.Parse(arguments.ToString())!["echo"]!.GetValue<string>());
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
    }

    [Fact]
    public async Task CompleteChat_Parameters_ReachUpstream()
    {
        var chat = _host.OpenAI.GetChatClient("gpt-test");
        var options = new ChatCompletionOptions
        {
            Temperature = 0.5f,
            TopP = 0.9f,
            MaxOutputTokenCount = 2,
            StopSequences = { "END" },
            EndUserId = "user-7",
            Metadata = { ["ticket"] = "T-1" },
            ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat(),
            FrequencyPenalty = 0.25f,
            PresencePenalty = 0.5f,
        };
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK.
        options.Seed = 42;
#pragma warning restore OPENAI001

        var completion = (await chat.CompleteChatAsync([new UserChatMessage("one two three four")], options)).Value;

        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        var sent = _host.Primary.Requests.Last().Json!;
        Assert.Equal("up-model", sent["model"]!.GetValue<string>());
        Assert.Equal(0.5, sent["temperature"]!.GetValue<double>(), 3);
        Assert.Equal(0.9, sent["top_p"]!.GetValue<double>(), 3);
        Assert.Equal(2, (sent["max_completion_tokens"] ?? sent["max_tokens"])!.GetValue<int>());
        Assert.Equal("END", sent["stop"]![0]!.GetValue<string>());
        Assert.Equal(42, sent["seed"]!.GetValue<long>());
        Assert.Equal("user-7", sent["user"]!.GetValue<string>());
        Assert.Equal("T-1", sent["metadata"]!["ticket"]!.GetValue<string>());
        Assert.Equal("json_object", sent["response_format"]!["type"]!.GetValue<string>());
        Assert.Equal(0.25, sent["frequency_penalty"]!.GetValue<double>(), 3);
        Assert.Equal(0.5, sent["presence_penalty"]!.GetValue<double>(), 3);
        Assert.Equal("research", _host.Primary.Requests.Last().Headers["x-team"]);
    }

    [Theory]
    [InlineData("high", "high")]
    [InlineData("low", "low")]
    [InlineData("minimal", "low")]
    public async Task CompleteChat_ReasoningEffort_ReachesUpstream(string sent, string forwarded)
    {
        var body = $$"""{"model":"gpt-test","reasoning_effort":"{{sent}}","messages":[{"role":"user","content":"think"}]}""";

        var response = await _host.Http.PostAsync("/v1/chat/completions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        Assert.True(response.IsSuccessStatusCode);
        Assert.Equal(forwarded, _host.Primary.Requests.Last().Json!["reasoning_effort"]!.GetValue<string>());
    }
}
