using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Anthropic.Exceptions;
using Marginal.Core.Errors;
using Marginal.Gateway.Providers;
using Marginal.Testing;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// The official OpenAI SDK against the gateway, served by an <c>anthropic</c> provider that talks to the fake's
/// Messages API: what the client gets must match what Anthropic sent, and what Anthropic got must match what the
/// client asked for.
/// </summary>
public sealed class AnthropicProviderTests : IAsyncLifetime
{
    private const string KeyVariable = "MARGINAL_TEST_ANTHROPIC_KEY";
    private const string Key = "sk-ant-test";

    private GatewayHost _host = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(KeyVariable, Key);
        _host = await GatewayHost.StartAsync(Yaml);
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    /// <summary>
    /// <c>claude-test</c> falls back to <c>gpt-backup</c> (OpenAI kind, on the secondary fake); <c>claude-solo</c>
    /// has no fallback; <c>claude-x-api-key</c> sends its key in <c>x-api-key</c>; <c>claude-versioned-url</c>'s
    /// base URL ends in <c>/v1</c>; <c>claude-keyless</c> has no key configured; <c>claude-short-timeout</c> sits on
    /// a provider with a short timeout.
    /// </summary>
    private static string Yaml(FakeUpstream primary, FakeUpstream secondary) => $"""
        pricing:
          book: prices.yaml
        providers:
          anthropic:
            kind: anthropic
            base_url: {primary.AnthropicBaseUrl}
            api_key_env: {KeyVariable}
            timeout: 2s
          anthropic-x-api-key:
            kind: anthropic
            base_url: {primary.AnthropicBaseUrl}
            api_key_env: {KeyVariable}
            api_key_header: x-api-key
            timeout: 2s
          anthropic-versioned-url:
            kind: anthropic
            base_url: {primary.AnthropicBaseUrl}v1
            api_key_env: {KeyVariable}
            timeout: 2s
          anthropic-keyless:
            kind: anthropic
            base_url: {primary.AnthropicBaseUrl}
            timeout: 2s
          anthropic-short-timeout:
            kind: anthropic
            base_url: {primary.AnthropicBaseUrl}
            api_key_env: {KeyVariable}
            timeout: 500ms
          secondary:
            kind: openai
            base_url: {secondary.OpenAIBaseUrl}
            timeout: 2s
        models:
          claude-test:
            provider: anthropic
            upstream: claude-up
            fallbacks: [gpt-backup]
          claude-priced:
            provider: anthropic
            upstream: claude-up
            price: claude-price
          claude-solo:
            provider: anthropic
            upstream: claude-solo-up
          claude-x-api-key:
            provider: anthropic-x-api-key
            upstream: claude-up
          claude-versioned-url:
            provider: anthropic-versioned-url
            upstream: claude-up
          claude-keyless:
            provider: anthropic-keyless
            upstream: claude-up
          claude-short-timeout:
            provider: anthropic-short-timeout
            upstream: claude-short-up
          gpt-backup:
            provider: secondary
            upstream: backup-model
        """;

    private RecordedRequest LastAnthropicRequest => _host.Primary.Requests.Last(r => r.Path == "/v1/messages");

    [Fact]
    public async Task Chat_TemperatureAndTopP_SentToAnthropicLive()
    {
        var response = await _host.Http.PostAsync("/v1/chat/completions", new StringContent(
            """{"model":"claude-solo","temperature":0.3,"top_p":0.8,"messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0.3, LastAnthropicRequest.Json!["temperature"]!.GetValue<double>());
        Assert.Equal(0.8, LastAnthropicRequest.Json!["top_p"]!.GetValue<double>());
    }

    [Theory]
    [InlineData("\"logprobs\":true", "logprobs")]
    [InlineData("\"logit_bias\":{\"42\":-100}", "logit_bias")]
    public async Task Chat_OpenAIOnlyFieldOnAnthropicModel_Returns400NamingItAndSendsNothing(string field, string param)
    {
        var response = await _host.Http.PostAsync("/v1/chat/completions", new StringContent(
            $$"""{"model":"claude-solo","messages":[{"role":"user","content":"hi"}],{{field}}}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal(param, error["param"]!.GetValue<string>());
        Assert.Equal("unsupported_parameter", error["code"]!.GetValue<string>());
        Assert.DoesNotContain(_host.Primary.Requests, r => r.Path == "/v1/messages");
    }

    [Fact]
    public async Task CompleteChat_PlainRequest_ReturnsTextStopAndUsageWithCachedTokens()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");

        var completion = (await chat.CompleteChatAsync([new UserChatMessage("hello there")])).Value;

        Assert.Equal("Echo: hello there", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("claude-up", completion.Model);
        Assert.StartsWith("msg_fake", completion.Id, StringComparison.Ordinal);
        // Anthropic's input_tokens (2 words) leaves out the cache: prompt_tokens is input + cache read + cache write.
        Assert.Equal(2 + FakeUpstream.AnthropicCacheReadTokens + FakeUpstream.AnthropicCacheCreationTokens, completion.Usage.InputTokenCount);
        Assert.Equal(FakeUpstream.AnthropicCacheReadTokens, completion.Usage.InputTokenDetails.CachedTokenCount);
        Assert.Equal(3, completion.Usage.OutputTokenCount);
        Assert.Equal(completion.Usage.InputTokenCount + 3, completion.Usage.TotalTokenCount);
    }

    [Theory]
    [InlineData(false, false, "0.00005535")]
    [InlineData(true, false, "0.0000576")]
    [InlineData(true, true, "0.0000576")]
    public async Task Chat_CacheWriteLifetimeReported_WritesArePricedAtTheirLifetimesPrice(bool oneHour, bool stream, string cost)
    {
        _host.Primary.AnthropicOneHourCacheWrites = oneHour;
        var chat = _host.OpenAI.GetChatClient("claude-priced");

        string id;
        if (stream)
        {
            var updates = chat.CompleteChatStreamingAsync([new UserChatMessage("hello there")]);
            await foreach (var _ in updates)
            {
            }
            id = (await _host.Ledger.ReadAsync().LastAsync()).Id;
        }
        else
        {
            var result = await chat.CompleteChatAsync([new UserChatMessage("hello there")]);
            Assert.True(result.GetRawResponse().Headers.TryGetValue("x-marginal-request-id", out var header));
            id = header!;
        }

        // 2 uncached × 3 + 2 cached × 0.3 + 1 written × (6 for 1 hour, else 3.75) + 3 output × 15, per 1M tokens.
        var record = await _host.Ledger.FindAsync(id);
        Assert.Equal(decimal.Parse(cost, System.Globalization.CultureInfo.InvariantCulture), record!.CostUsd);
    }

    [Fact]
    public async Task CompleteChat_PlainRequest_SendsKeyAsBearerVersionAndUpstreamModel()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");

        await chat.CompleteChatAsync([new UserChatMessage("hello")]);

        // The SDK sends the API key as a bearer token, not in x-api-key.
        var sent = LastAnthropicRequest;
        Assert.Equal($"Bearer {Key}", sent.Headers["authorization"]);
        Assert.False(string.IsNullOrEmpty(sent.Headers["anthropic-version"]));
        Assert.Equal("claude-up", sent.Json!["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task CompleteChat_ApiKeyHeaderConfigured_SendsKeyInXApiKeyOnly()
    {
        var chat = _host.OpenAI.GetChatClient("claude-x-api-key");

        var completion = (await chat.CompleteChatAsync([new UserChatMessage("hello")])).Value;

        Assert.Equal("Echo: hello", completion.Content[0].Text);
        var sent = LastAnthropicRequest;
        Assert.Equal(Key, sent.Headers["x-api-key"]);
        Assert.False(sent.Headers.ContainsKey("authorization"));
    }

    [Fact]
    public async Task CompleteChat_BaseUrlEndsInVersion_ReachesMessagesEndpoint()
    {
        var chat = _host.OpenAI.GetChatClient("claude-versioned-url");

        var completion = (await chat.CompleteChatAsync([new UserChatMessage("hello")])).Value;

        Assert.Equal("Echo: hello", completion.Content[0].Text);
        Assert.Equal("/v1/messages", _host.Primary.Requests.Last().Path);
    }

    [Fact]
    public async Task CompleteChat_NoKeyConfigured_SendsNoKeyEvenWithAnthropicVariableSet()
    {
        var chat = _host.OpenAI.GetChatClient("claude-keyless");
        var saved = Environment.GetEnvironmentVariable("ANTHROPIC_API_KEY");
        Environment.SetEnvironmentVariable("ANTHROPIC_API_KEY", "sk-ant-from-host");
        try
        {
            var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("hello")]));

            Assert.Equal(502, error.Status);
            Assert.Equal("upstream_auth_failed", JsonNode.Parse(error.GetRawResponse()!.Content.ToString())!["error"]!["code"]!.GetValue<string>());
            var sent = LastAnthropicRequest;
            Assert.False(sent.Headers.ContainsKey("authorization"));
            Assert.False(sent.Headers.ContainsKey("x-api-key"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("ANTHROPIC_API_KEY", saved);
        }
    }

    [Fact]
    public async Task CompleteChat_SystemMessage_GoesToTopLevelSystemField()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");

        await chat.CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("hello there")]);

        var sent = LastAnthropicRequest.Json!;
        var system = sent["system"]!;
        var text = system is JsonArray blocks ? blocks[0]!["text"]!.GetValue<string>() : system.GetValue<string>();
        Assert.Equal("Be brief.", text);
        var message = Assert.Single(sent["messages"]!.AsArray());
        Assert.Equal("user", message!["role"]!.GetValue<string>());
    }

    [Fact]
    public async Task CompleteChat_NoMaxTokens_SendsGatewayDefault()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");

        await chat.CompleteChatAsync([new UserChatMessage("hello")]);

        Assert.Equal(4096, LastAnthropicRequest.Json!["max_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task CompleteChat_MaxTokensSet_SendsClientValue()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 100 };

        await chat.CompleteChatAsync([new UserChatMessage("hello")], options);

        Assert.Equal(100, LastAnthropicRequest.Json!["max_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task CompleteChat_EndUser_SentAsMetadataUserIdWithModelAndMaxTokensKept()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");
        var options = new ChatCompletionOptions { EndUserId = "user-7", MaxOutputTokenCount = 50 };

        var completion = (await chat.CompleteChatAsync([new UserChatMessage("hello")], options)).Value;

        Assert.Equal("Echo: hello", completion.Content[0].Text);
        var sent = LastAnthropicRequest.Json!;
        Assert.Equal("user-7", sent["metadata"]!["user_id"]!.GetValue<string>());
        Assert.Equal("claude-up", sent["model"]!.GetValue<string>());
        Assert.Equal(50, sent["max_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task CompleteChat_GatewayContext_NeverReachesUpstream()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");

        await chat.CompleteChatAsync([new UserChatMessage("hello")]);

        Assert.DoesNotContain("marginal", LastAnthropicRequest.Body, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task CompleteChat_MaxTokensReached_FinishReasonLength()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 2 };

        var completion = (await chat.CompleteChatAsync([new UserChatMessage("one two three four")], options)).Value;

        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal("Echo: one", completion.Content[0].Text);
        Assert.Equal(2, completion.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task CompleteChat_StopSequenceHit_SentAsStopSequencesAndFinishReasonStop()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");
        var options = new ChatCompletionOptions { StopSequences = { "three" } };

        var completion = (await chat.CompleteChatAsync([new UserChatMessage("one two three four")], options)).Value;

        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("Echo: one two", completion.Content[0].Text);
        Assert.Equal("three", LastAnthropicRequest.Json!["stop_sequences"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task CompleteChatStreaming_PlainRequest_SameTextAsNonStreamedAndUsageInFinalChunk()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");
        List<ChatMessage> messages = [new UserChatMessage("stream these words please")];
        var whole = (await chat.CompleteChatAsync(messages)).Value;
        var text = new StringBuilder();
        var finishes = new List<ChatFinishReason>();
        ChatTokenUsage? usage = null;

        await foreach (var update in chat.CompleteChatStreamingAsync(messages))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
            usage ??= update.Usage;
            if (update.FinishReason is { } finish)
            {
                finishes.Add(finish);
            }
        }

        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.Equal([ChatFinishReason.Stop], finishes);
        Assert.True(LastAnthropicRequest.Json!["stream"]!.GetValue<bool>());
        Assert.NotNull(usage);
        // message_delta carries only output_tokens; the input and cache counts of message_start must survive it.
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(FakeUpstream.AnthropicCacheReadTokens, usage.InputTokenDetails.CachedTokenCount);
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
    }

    [Fact]
    public async Task CompleteChatStreaming_SlowUpstream_ForwardsFirstTokenBeforeTheRest()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _host.Primary.HoldAfterFirstChunk = hold;
        var text = new StringBuilder();

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("one two")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
                hold.TrySetResult();
            }
        }

        Assert.Equal("Echo: one two", text.ToString());
    }

    [Fact]
    public async Task CompleteChatStreaming_StreamOutlastsTimeout_IsNotCut()
    {
        var chat = _host.OpenAI.GetChatClient("claude-short-timeout");
        // A first call through a model with a longer timeout warms the SDK up, so only the stream is measured.
        await _host.OpenAI.GetChatClient("claude-test").CompleteChatAsync([new UserChatMessage("warm up")]);
        // Ten events 150 ms apart: the stream runs three times the provider's 500 ms timeout to the headers.
        _host.Primary.ChunkDelay = TimeSpan.FromMilliseconds(150);
        var text = new StringBuilder();

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("a b c d")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Equal("Echo: a b c d", text.ToString());
    }

    [Fact]
    public async Task CompleteChat_ToolRoundTrip_ToolUseBecomesToolCallAndResultBecomesToolResult()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");
        var tool = ChatTool.CreateFunctionTool("lookup", "Looks things up", BinaryData.FromString("""{"type":"object","properties":{"echo":{"type":"string"}}}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        List<ChatMessage> messages = [new UserChatMessage("find cats")];

        var first = (await chat.CompleteChatAsync(messages, options)).Value;

        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal(FakeUpstream.AnthropicToolUseId, call.Id);
        Assert.Equal("lookup", call.FunctionName);
        Assert.Equal("find cats", JsonNode.Parse(call.FunctionArguments.ToString())!["echo"]!.GetValue<string>());
        Assert.Equal("lookup", LastAnthropicRequest.Json!["tools"]![0]!["name"]!.GetValue<string>());

        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, "42 cats"));
        var second = (await chat.CompleteChatAsync(messages, options)).Value;

        Assert.Equal("Tool said: 42 cats", second.Content[0].Text);
        var sent = LastAnthropicRequest.Json!["messages"]!.AsArray();
        var toolUse = sent[1]!["content"]!.AsArray().Single(b => b!["type"]!.GetValue<string>() == "tool_use")!;
        Assert.Equal(call.Id, toolUse["id"]!.GetValue<string>());
        Assert.Equal("user", sent[2]!["role"]!.GetValue<string>());
        var toolResult = sent[2]!["content"]![0]!;
        Assert.Equal("tool_result", toolResult["type"]!.GetValue<string>());
        Assert.Equal(call.Id, toolResult["tool_use_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task CompleteChatStreaming_ToolCall_StreamsOneAssembledToolCall()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");
        var options = new ChatCompletionOptions { Tools = { ChatTool.CreateFunctionTool("lookup", "Looks things up") } };
        var names = new List<string>();
        var arguments = new StringBuilder();
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
    public async Task CompleteChat_Upstream429WithRetryAfter_Returns429WithRetryAfter()
    {
        var chat = _host.OpenAI.GetChatClient("claude-solo");
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 429, RetryAfter: "7", Message: "Number of requests has exceeded your rate limit."));

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(429, error.Status);
        Assert.True(error.GetRawResponse()!.Headers.TryGetValue("Retry-After", out var retryAfter));
        Assert.Equal("7", retryAfter);
        Assert.Contains("Number of requests has exceeded your rate limit.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CompleteChatStreaming_Upstream429WithRetryAfter_Returns429WithRetryAfter()
    {
        var chat = _host.OpenAI.GetChatClient("claude-solo");
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 429, RetryAfter: "3"));

        var error = await Assert.ThrowsAsync<ClientResultException>(async () =>
        {
            await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("hello")]))
            {
            }
        });

        Assert.Equal(429, error.Status);
        Assert.True(error.GetRawResponse()!.Headers.TryGetValue("Retry-After", out var retryAfter));
        Assert.Equal("3", retryAfter);
    }

    [Fact]
    public async Task CompleteChat_Upstream529Overloaded_FallsBackToOpenAIModel()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 529, Message: "Overloaded"));

        var result = await chat.CompleteChatAsync([new UserChatMessage("hello there")]);

        Assert.Equal("Echo: hello there", result.Value.Content[0].Text);
        Assert.Equal("backup-model", result.Value.Model);
        Assert.True(result.GetRawResponse().Headers.TryGetValue("x-marginal-model", out var served));
        Assert.Equal("gpt-backup", served);
        Assert.Single(_host.Secondary.Requests);
    }

    [Fact]
    public async Task CompleteChat_Upstream400_Returns400WithAnthropicMessage()
    {
        var chat = _host.OpenAI.GetChatClient("claude-test");
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 400, Message: "messages: roles must alternate between \"user\" and \"assistant\""));

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(400, error.Status);
        var body = JsonNode.Parse(error.GetRawResponse()!.Content.ToString())!;
        Assert.Equal("messages: roles must alternate between \"user\" and \"assistant\"", body["error"]!["message"]!.GetValue<string>());
        Assert.Empty(_host.Secondary.Requests);
    }

    [Fact]
    public async Task CompleteChat_MalformedJson_Returns502()
    {
        var chat = _host.OpenAI.GetChatClient("claude-solo");
        _host.Primary.Enqueue(new Fault(FaultKind.MalformedJson));

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(502, error.Status);
        Assert.Equal("upstream_malformed_response", JsonNode.Parse(error.GetRawResponse()!.Content.ToString())!["error"]!["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task CompleteChat_UpstreamSlowerThanTimeout_Returns504()
    {
        var chat = _host.OpenAI.GetChatClient("claude-short-timeout");
        _host.Primary.Enqueue(new Fault(FaultKind.Delay, Delay: TimeSpan.FromSeconds(2)));

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(504, error.Status);
    }

    [Fact]
    public async Task StreamingRequest_ResetMidStream_EndsWithErrorEvent()
    {
        // Raw HTTP rather than the SDK: the point is the exact event the client receives after the reset.
        // The fake holds after its first text delta until the client has it, then resets instead of sending event 4:
        // without the hold the reset could discard bytes the gateway had not read yet.
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _host.Primary.HoldAfterFirstChunk = hold;
        _host.Primary.Enqueue(new Fault(FaultKind.ResetMidStream, AfterChunks: 4));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"claude-test","stream":true,"messages":[{"role":"user","content":"one two three"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new("Bearer", "sk-test");

        using var response = await _host.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var events = await SseEvents.ReadReleasingAsync(response, "Echo:", hold);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var error = JsonNode.Parse(events[^1])!["error"]!;
        Assert.Equal("upstream_connection_lost", error["code"]!.GetValue<string>());
        Assert.DoesNotContain("[DONE]", events);
        // Bytes had reached the client, so the fallback model must not have been tried.
        Assert.Empty(_host.Secondary.Requests);
    }
}

/// <summary>How <see cref="ProviderErrors"/> reads the Anthropic SDK's exceptions that the fake cannot provoke.</summary>
public sealed class AnthropicErrorClassificationTests
{
    [Fact]
    public void Classify_SseErrorEventOverloaded_UnavailableWithUpstreamMessage()
    {
        var error = new AnthropicSseException("SSE error returned from server")
        {
            Body = JsonDocument.Parse("""{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}""").RootElement.Clone(),
        };

        var classified = ProviderErrors.Classify(error, "anthropic");

        Assert.Equal(GatewayErrorKind.UpstreamUnavailable, classified.Kind);
        Assert.Equal(529, classified.UpstreamStatus);
        Assert.Contains("Overloaded", classified.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Classify_ApiExceptionWithRetryAfterMsInData_RateLimitedWithThatWait()
    {
        var error = new AnthropicRateLimitException(null)
        {
            StatusCode = HttpStatusCode.TooManyRequests,
            ResponseBody = """{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}""",
        };
        error.Data[ProviderErrors.RetryAfterMsDataKey] = "1500";
        error.Data[ProviderErrors.RetryAfterDataKey] = "9";

        var classified = ProviderErrors.Classify(error, "anthropic");

        Assert.Equal(GatewayErrorKind.RateLimited, classified.Kind);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), classified.RetryAfter);
        Assert.Contains("Slow down", classified.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Classify_IOExceptionAroundConnectionFailure_Unreachable()
    {
        var error = new AnthropicIOException("I/O exception", new HttpRequestException("Connection refused"));

        var classified = ProviderErrors.Classify(error, "anthropic");

        Assert.Equal(GatewayErrorKind.UpstreamUnavailable, classified.Kind);
        Assert.Equal("upstream_unreachable", classified.Code);
    }

    [Fact]
    public void Classify_InvalidData_Malformed()
    {
        var classified = ProviderErrors.Classify(new AnthropicInvalidDataException("Message cannot be null"), "anthropic");

        Assert.Equal("upstream_malformed_response", classified.Code);
    }
}
