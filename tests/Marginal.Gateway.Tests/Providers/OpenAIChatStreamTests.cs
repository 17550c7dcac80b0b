using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json.Nodes;
using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Gateway.Providers;
using Marginal.Gateway.Providers.OpenAI;
using Marginal.Testing;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Marginal.Gateway.Tests.Providers;

/// <summary>
/// The wire-level reader against the OpenAI SDK it stands in for: for the requests it takes, streamed or not, the same
/// body reaches the upstream and the same updates or answer come back; the requests it cannot express go to the SDK.
/// </summary>
public sealed class OpenAIChatStreamTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync();
        _http = new HttpClient();
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _upstream.DisposeAsync();
    }

    private IChatClient Sdk() => new OpenAIClient(new ApiKeyCredential("sk-parity"), new OpenAIClientOptions
    {
        Endpoint = _upstream.OpenAIBaseUrl,
        Transport = new HttpClientPipelineTransport(_http),
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
    }).GetChatClient("default").AsIChatClient();

    private OpenAIChatStream Lean(TimeSpan? readTimeout = null) =>
        new(_http, _upstream.OpenAIBaseUrl, "sk-parity", "upstream", readTimeout ?? TimeSpan.FromSeconds(10), TimeProvider.System);

    private static async Task<List<ChatResponseUpdate>> CollectAsync(IAsyncEnumerable<ChatResponseUpdate> updates)
    {
        var list = new List<ChatResponseUpdate>();
        await foreach (var update in updates)
        {
            list.Add(update);
        }
        return list;
    }

    private static List<ChatMessage> Conversation() =>
    [
        new(ChatRole.System, "You are terse."),
        new(new ChatRole("developer"), "Answer in English."),
        new(ChatRole.User, "What is 2 + 2?") { AuthorName = "ada" },
        new(ChatRole.Assistant, "4."),
        new(ChatRole.User, "And 3 + 3?"),
    ];

    private static ChatOptions Options()
    {
        var options = new ChatOptions
        {
            ModelId = "up-model",
            Temperature = 0.25f,
            TopP = 0.5f,
            MaxOutputTokens = 64,
            StopSequences = ["END", "STOP"],
            FrequencyPenalty = 0.5f,
            PresencePenalty = -0.5f,
            Seed = 7,
            ResponseFormat = ChatResponseFormat.Json,
            Reasoning = new ReasoningOptions { Effort = ReasoningEffort.Low },
        };
        return options;
    }

    [Fact]
    public async Task Stream_PlainRequest_SendsTheSdksBodyAndReturnsTheSameUpdates()
    {
        var viaSdk = await CollectAsync(Sdk().GetStreamingResponseAsync(Conversation(), Options()));
        var sdkRequest = _upstream.Requests.Last();
        var viaLean = await CollectAsync(Lean().StreamAsync(Conversation(), Options(), CancellationToken.None));
        var leanRequest = _upstream.Requests.Last();

        Assert.True(JsonNode.DeepEquals(sdkRequest.Json, leanRequest.Json), $"bodies differ:\nSDK:  {sdkRequest.Body}\nlean: {leanRequest.Body}");
        Assert.Equal(sdkRequest.Headers["authorization"], leanRequest.Headers["authorization"]);
        Assert.Equal(string.Concat(viaSdk.Select(u => u.Text)), string.Concat(viaLean.Select(u => u.Text)));
        Assert.NotEmpty(string.Concat(viaLean.Select(u => u.Text)));
        Assert.Equal(viaSdk.Last(u => u.FinishReason is not null).FinishReason, viaLean.Last(u => u.FinishReason is not null).FinishReason);
        // The upstream numbers its answers, so the ids differ by one; each path carries its answer's one id, model and time.
        Assert.Equal("up-model", sdkRequest.Json!["model"]!.GetValue<string>());
        Assert.Equal(viaSdk.Select(u => u.ModelId).Distinct(), viaLean.Select(u => u.ModelId).Distinct());
        Assert.Single(viaLean.Select(u => u.ResponseId).Distinct(), id => id!.StartsWith("chatcmpl-", StringComparison.Ordinal));
        Assert.Single(viaLean.Select(u => u.CreatedAt).Distinct(), at => at is not null);
        Assert.Equal(viaSdk.Count(u => u.Text.Length > 0), viaLean.Count(u => u.Text.Length > 0));
        var sdkUsage = Usage(viaSdk);
        var leanUsage = Usage(viaLean);
        Assert.Equal((sdkUsage.InputTokenCount, sdkUsage.OutputTokenCount, sdkUsage.TotalTokenCount, sdkUsage.CachedInputTokenCount ?? 0, sdkUsage.ReasoningTokenCount ?? 0),
            (leanUsage.InputTokenCount, leanUsage.OutputTokenCount, leanUsage.TotalTokenCount, leanUsage.CachedInputTokenCount ?? 0, leanUsage.ReasoningTokenCount ?? 0));
    }

    [Fact]
    public async Task Stream_EndUserAndMetadata_WrittenAsTheShapedSdkRequestWritesThem()
    {
        var options = Options();
        options.AdditionalProperties = new() { [GatewayContext.PropertyKey] = new GatewayContext { EndUser = "user-9", Metadata = new Dictionary<string, string> { ["team"] = "search" } } };

        await CollectAsync(Lean().StreamAsync(Conversation(), options, CancellationToken.None));

        var body = _upstream.Requests.Last().Json!;
        Assert.Equal("user-9", body["user"]!.GetValue<string>());
        Assert.Equal("search", body["metadata"]!["team"]!.GetValue<string>());
        Assert.True(body["stream_options"]!["include_usage"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Stream_CachedTokensOpenAIAndDeepSeekStyle_ReadAsCachedInput()
    {
        _upstream.CachedTokens = 3;
        var openAI = Usage(await CollectAsync(Lean().StreamAsync(Conversation(), Options(), CancellationToken.None)));
        _upstream.DeepSeekCacheUsage = true;
        var deepSeek = Usage(await CollectAsync(Lean().StreamAsync(Conversation(), Options(), CancellationToken.None)));

        Assert.Equal(3, openAI.CachedInputTokenCount);
        Assert.Equal(3, deepSeek.CachedInputTokenCount);
    }

    [Fact]
    public async Task Stream_UpstreamRateLimits_ThrowsRateLimitedWithRetryAfter()
    {
        _upstream.Enqueue(new Fault(FaultKind.Status, Status: 429, RetryAfter: "7", Message: "slow down"));

        var error = await Assert.ThrowsAsync<GatewayException>(() => CollectAsync(Lean().StreamAsync(Conversation(), Options(), CancellationToken.None)));

        Assert.Equal(GatewayErrorKind.RateLimited, error.Kind);
        Assert.Equal(TimeSpan.FromSeconds(7), error.RetryAfter);
        Assert.Contains("slow down", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stream_UpstreamStallsMidStream_TimesOut()
    {
        _upstream.HoldAfterFirstChunk = new TaskCompletionSource();
        try
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                CollectAsync(Lean(readTimeout: TimeSpan.FromMilliseconds(300)).StreamAsync(Conversation(), Options(), CancellationToken.None)));
        }
        finally
        {
            _upstream.HoldAfterFirstChunk.TrySetResult();
        }
    }

    [Fact]
    public async Task Stream_TruncatedStream_EndsWithTheTextSoFarAndNoFinish()
    {
        _upstream.Enqueue(new Fault(FaultKind.TruncatedStream, AfterChunks: 2));

        var updates = await CollectAsync(Lean().StreamAsync(Conversation(), Options(), CancellationToken.None));

        Assert.NotEmpty(string.Concat(updates.Select(u => u.Text)));
        Assert.DoesNotContain(updates, u => u.FinishReason is not null);
    }

    [Fact]
    public async Task Stream_EventsSplitAcrossReads_ReadsEscapesRefusalFirstChoiceAndUsage()
    {
        // Five bytes per read, so most events span several buffer segments.
        using var http = new HttpClient(new SseHandler(5,
            """{"id":"c1","object":"chat.completion.chunk","created":1700000000,"model":"m-1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}""",
            """{"id":"c1","object":"chat.completion.chunk","created":1700000000,"model":"m-1","choices":[{"index":0,"delta":{"content":"caf\u00e9 \"q\"\n"},"logprobs":{"content":[{"token":"x","logprob":-0.1,"bytes":[120],"top_logprobs":[]}]},"finish_reason":null},{"index":1,"delta":{"content":"second choice"},"finish_reason":null}],"system_fingerprint":"fp"}""",
            """{"id":"c1","object":"chat.completion.chunk","created":1700000000,"model":"m-1","choices":[{"index":0,"delta":{"refusal":"no","content":"end"},"finish_reason":"length"}]}""",
            """{"id":"c1","object":"chat.completion.chunk","created":1700000000,"model":"m-1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":2}}}"""));
        var stream = new OpenAIChatStream(http, new Uri("http://127.0.0.1:1/v1"), "sk-x", "upstream", TimeSpan.FromSeconds(10), TimeProvider.System);

        var updates = await CollectAsync(stream.StreamAsync(Conversation(), Options(), CancellationToken.None));

        Assert.Equal(4, updates.Count);
        Assert.Equal(["caf\u00e9 \"q\"\n", "end", "no"], updates.SelectMany(u => u.Contents.OfType<TextContent>()).Select(t => t.Text));
        Assert.Equal(ChatFinishReason.Length, updates[2].FinishReason);
        Assert.All(updates, u => Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), u.CreatedAt));
        // Every event repeats the id and model: one string each serves the whole stream.
        Assert.All(updates, u => Assert.Same(updates[0].ResponseId, u.ResponseId));
        Assert.All(updates, u => Assert.Same(updates[0].ModelId, u.ModelId));
        Assert.Equal(("c1", "m-1"), (updates[0].ResponseId, updates[0].ModelId));
        var usage = Usage(updates);
        Assert.Equal((5L, 3L, 8L, 2L), (usage.InputTokenCount, usage.OutputTokenCount, usage.TotalTokenCount, usage.CachedInputTokenCount));
    }

    [Fact]
    public async Task Stream_ErrorEventAfterTheStreamStarted_ThrowsWithTheUpstreamsMessage()
    {
        using var http = new HttpClient(new SseHandler(4096,
            """{"id":"c1","object":"chat.completion.chunk","created":1700000000,"model":"m-1","choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":null}]}""",
            """{"error":{"message":"overloaded mid-stream","type":"server_error","code":null}}"""));
        var stream = new OpenAIChatStream(http, new Uri("http://127.0.0.1:1/v1"), "sk-x", "upstream", TimeSpan.FromSeconds(10), TimeProvider.System);

        var error = await Assert.ThrowsAsync<GatewayException>(() => CollectAsync(stream.StreamAsync(Conversation(), Options(), CancellationToken.None)));

        Assert.Contains("overloaded mid-stream", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Answers every request with the given SSE events, handing out at most <c>bytesPerRead</c> bytes per read.</summary>
    private sealed class SseHandler(int bytesPerRead, params string[] events) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var body = System.Text.Encoding.UTF8.GetBytes(string.Concat(events.Select(e => $"data: {e}\n\n")) + "data: [DONE]\n\n");
            var content = new StreamContent(new TrickleStream(body, bytesPerRead));
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("text/event-stream");
            return Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = content, RequestMessage = request });
        }
    }

    private sealed class TrickleStream(byte[] body, int bytesPerRead) : MemoryStream(body)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, bytesPerRead));

        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, bytesPerRead)]);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, bytesPerRead)], cancellationToken);
    }

    [Fact]
    public async Task Complete_PlainRequest_SendsTheSdksBodyAndReturnsTheSameResponse()
    {
        var viaSdk = await Sdk().GetResponseAsync(Conversation(), Options());
        var sdkRequest = _upstream.Requests.Last();
        var viaLean = await Lean().CompleteAsync(Conversation(), Options(), CancellationToken.None);
        var leanRequest = _upstream.Requests.Last();

        Assert.True(JsonNode.DeepEquals(sdkRequest.Json, leanRequest.Json), $"bodies differ:\nSDK:  {sdkRequest.Body}\nlean: {leanRequest.Body}");
        Assert.Equal(sdkRequest.Headers["authorization"], leanRequest.Headers["authorization"]);
        Assert.NotEmpty(viaLean.Text);
        Assert.Equal(viaSdk.Text, viaLean.Text);
        Assert.Equal(viaSdk.FinishReason, viaLean.FinishReason);
        Assert.Equal(viaSdk.ModelId, viaLean.ModelId);
        Assert.StartsWith("chatcmpl-", viaLean.ResponseId, StringComparison.Ordinal);
        Assert.NotNull(viaLean.CreatedAt);
        Assert.Equal(ChatRole.Assistant, Assert.Single(viaLean.Messages).Role);
        Assert.Equal((viaSdk.Usage!.InputTokenCount, viaSdk.Usage.OutputTokenCount, viaSdk.Usage.TotalTokenCount, viaSdk.Usage.CachedInputTokenCount ?? 0, viaSdk.Usage.ReasoningTokenCount ?? 0),
            (viaLean.Usage!.InputTokenCount, viaLean.Usage.OutputTokenCount, viaLean.Usage.TotalTokenCount, viaLean.Usage.CachedInputTokenCount ?? 0, viaLean.Usage.ReasoningTokenCount ?? 0));
    }

    [Fact]
    public async Task Complete_CachedTokensDeepSeekStyle_ReadAsCachedInput()
    {
        _upstream.CachedTokens = 3;
        _upstream.DeepSeekCacheUsage = true;

        var response = await Lean().CompleteAsync(Conversation(), Options(), CancellationToken.None);

        Assert.Equal(3, response.Usage!.CachedInputTokenCount);
    }

    [Fact]
    public async Task Complete_UpstreamUnavailable_ThrowsWithTheUpstreamsStatusAndRetryAfter()
    {
        _upstream.Enqueue(new Fault(FaultKind.Status, Status: 503, RetryAfter: "3", Message: "overloaded"));

        var error = await Assert.ThrowsAsync<GatewayException>(() => Lean().CompleteAsync(Conversation(), Options(), CancellationToken.None));

        Assert.Equal(GatewayErrorKind.UpstreamUnavailable, error.Kind);
        Assert.Equal(503, error.UpstreamStatus);
        Assert.Equal(TimeSpan.FromSeconds(3), error.RetryAfter);
        Assert.Contains("overloaded", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Complete_MalformedJson_ClassifiedAsAMalformedUpstreamAnswer()
    {
        _upstream.Enqueue(new Fault(FaultKind.MalformedJson));

        var thrown = await Assert.ThrowsAnyAsync<System.Text.Json.JsonException>(() => Lean().CompleteAsync(Conversation(), Options(), CancellationToken.None));

        Assert.Equal("upstream_malformed_response", ProviderErrors.Classify(thrown, "upstream").Code);
    }

    [Fact]
    public void CanWrite_ToolsImagesSchemasAndToolResults_LeftToTheSdk()
    {
        ChatMessage[] text = [new(ChatRole.User, "hi")];

        Assert.True(OpenAIChatStream.CanWrite(text, Options()));
        Assert.False(OpenAIChatStream.CanWrite(text, new ChatOptions { Tools = [AIFunctionFactory.Create(() => 1, "one")] }));
        Assert.False(OpenAIChatStream.CanWrite(text, new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(System.Text.Json.JsonDocument.Parse("""{"type":"object"}""").RootElement) }));
        Assert.False(OpenAIChatStream.CanWrite([new(ChatRole.User, [new UriContent(new Uri("https://example.com/a.png"), "image/png")])], null));
        Assert.False(OpenAIChatStream.CanWrite([new(ChatRole.Tool, [new FunctionResultContent("call_1", "42")])], null));
        Assert.False(OpenAIChatStream.CanWrite([new(ChatRole.Assistant, [new FunctionCallContent("call_1", "one")])], null));
    }

    private static UsageDetails Usage(List<ChatResponseUpdate> updates) =>
        updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single().Details;
}
