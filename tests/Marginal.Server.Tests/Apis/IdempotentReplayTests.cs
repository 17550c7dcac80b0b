using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Testing;
using OpenAI;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// A retried <c>Idempotency-Key</c> gets the first answer back from the gateway instead of a second upstream call. The
/// exact cache is off in these tests and no temperature is sent, so nothing but idempotent replay could save the call.
/// </summary>
public sealed class IdempotentReplayTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() =>
        _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, "cache: { exact: { enabled: false } }"));

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private int UpstreamCalls => _host.Primary.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));

    /// <summary>The official SDK, sending <paramref name="idempotencyKey"/> on every request.</summary>
    private ChatClient SdkWithKey(string idempotencyKey, string model = "gpt-test")
    {
        var options = new OpenAIClientOptions { Endpoint = new Uri(_host.BaseUrl, "/v1"), RetryPolicy = new ClientRetryPolicy(maxRetries: 0) };
        options.AddPolicy(new IdempotencyKeyPolicy(idempotencyKey), PipelinePosition.PerCall);
        return new OpenAIClient(new ApiKeyCredential("sk-test"), options).GetChatClient(model);
    }

    private async Task<HttpResponseMessage> PostAsync(string body, string idempotencyKey)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        return await _host.Http.SendAsync(request);
    }

    [Fact]
    public async Task Chat_RetriedWithSameKey_ReplaysTheFirstAnswerWithoutCallingUpstream()
    {
        var chat = SdkWithKey("order-1");

        var first = await chat.CompleteChatAsync([new UserChatMessage("what is the capital of France")]);
        var retry = await chat.CompleteChatAsync([new UserChatMessage("what is the capital of France")]);

        Assert.Equal(1, UpstreamCalls);
        Assert.Equal(first.GetRawResponse().Content.ToString(), retry.GetRawResponse().Content.ToString());
        Assert.Equal(first.Value.Content[0].Text, retry.Value.Content[0].Text);
        Assert.True(retry.GetRawResponse().Headers.TryGetValue("x-marginal-idempotent-replay", out var replayed));
        Assert.Equal("true", replayed);
        Assert.False(first.GetRawResponse().Headers.TryGetValue("x-marginal-idempotent-replay", out _));
        Assert.Equal(1, await _host.Ledger.CountAsync());
    }

    [Fact]
    public async Task Stream_RetriedWithSameKey_ReplaysTheSameEventsAsAStream()
    {
        const string body = """{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"stream this once"}]}""";

        var first = await PostAsync(body, "stream-1");
        var firstBody = await first.Content.ReadAsStringAsync();
        var retry = await PostAsync(body, "stream-1");
        var retryBody = await retry.Content.ReadAsStringAsync();

        Assert.Equal(1, UpstreamCalls);
        Assert.Equal("text/event-stream", retry.Content.Headers.ContentType?.MediaType);
        Assert.Equal("true", retry.Headers.GetValues("x-marginal-idempotent-replay").Single());
        // Every data event, usage chunk and [DONE] included, is the first answer's; only the cost comment notes the duplicate.
        Assert.Equal(DataLines(firstBody), DataLines(retryBody));
        Assert.Contains("data: [DONE]", retryBody, StringComparison.Ordinal);
        Assert.Equal(1, await _host.Ledger.CountAsync());
    }

    [Fact]
    public async Task Stream_RetriedThroughTheSdk_GetsTheSameText()
    {
        var chat = SdkWithKey("stream-sdk");
        var first = await TextOf(chat.CompleteChatStreamingAsync([new UserChatMessage("tell me twice")]));

        var retry = await TextOf(chat.CompleteChatStreamingAsync([new UserChatMessage("tell me twice")]));

        Assert.Equal(1, UpstreamCalls);
        Assert.NotEmpty(first);
        Assert.Equal(first, retry);
    }

    [Fact]
    public async Task Chat_SameKeyDifferentBody_Is422IdempotencyKeyReuse()
    {
        await PostAsync("""{"model":"gpt-test","messages":[{"role":"user","content":"first question"}]}""", "reused");

        var second = await PostAsync("""{"model":"gpt-test","messages":[{"role":"user","content":"another question"}]}""", "reused");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, second.StatusCode);
        var error = JsonNode.Parse(await second.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("idempotency_key_reuse", (string?)error["code"]);
        Assert.Equal("Idempotency-Key", (string?)error["param"]);
        Assert.Equal("invalid_request_error", (string?)error["type"]);
        Assert.Equal(1, UpstreamCalls);
    }

    [Fact]
    public async Task Chat_SameKeyAsJsonAfterAStream_Is422()
    {
        await (await PostAsync("""{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"same words"}]}""", "mode")).Content.ReadAsStringAsync();

        var json = await PostAsync("""{"model":"gpt-test","messages":[{"role":"user","content":"same words"}]}""", "mode");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, json.StatusCode);
    }

    [Fact]
    public async Task Stream_SameKeyWhileFirstInFlight_Is409ThenReplayedOnceDone()
    {
        const string body = """{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"slow answer please"}]}""";
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _host.Primary.HoldAfterFirstChunk = hold;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("Idempotency-Key", "busy");
        using var first = await _host.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await first.Content.ReadAsStreamAsync());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var seen = "";
        while (!seen.Contains("Echo:", StringComparison.Ordinal))
        {
            seen += await reader.ReadLineAsync(timeout.Token);
        }

        var concurrent = await PostAsync(body, "busy");
        hold.SetResult();
        var firstRest = await reader.ReadToEndAsync();
        var afterwards = await PostAsync(body, "busy");

        Assert.Equal(HttpStatusCode.Conflict, concurrent.StatusCode);
        Assert.Equal("idempotency_key_in_use", (string?)JsonNode.Parse(await concurrent.Content.ReadAsStringAsync())!["error"]!["code"]);
        // At most the marker's lease (in_flight_ttl, 30 s by default): the key is free or answered by then.
        Assert.InRange(concurrent.Headers.RetryAfter?.Delta ?? TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        Assert.Contains("data: [DONE]", firstRest, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, afterwards.StatusCode);
        Assert.Equal("true", afterwards.Headers.GetValues("x-marginal-idempotent-replay").Single());
        Assert.Equal(1, UpstreamCalls);
    }

    [Fact]
    public async Task Chat_FailedThenRetried_GoesUpstreamAgainAndTheSuccessIsReplayed()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 500));
        const string body = """{"model":"gpt-solo","messages":[{"role":"user","content":"fail first"}]}""";

        var failed = await PostAsync(body, "flaky");
        var succeeded = await PostAsync(body, "flaky");
        var replayed = await PostAsync(body, "flaky");

        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        Assert.Equal(HttpStatusCode.OK, succeeded.StatusCode);
        Assert.False(succeeded.Headers.Contains("x-marginal-idempotent-replay"));
        Assert.Equal("true", replayed.Headers.GetValues("x-marginal-idempotent-replay").Single());
        Assert.Equal(await succeeded.Content.ReadAsStringAsync(), await replayed.Content.ReadAsStringAsync());
        Assert.Equal(2, UpstreamCalls);
    }

    [Fact]
    public async Task Chat_KeysOfTwoTenantsOrNoKey_NeverShareAnAnswer()
    {
        const string body = """{"model":"gpt-test","messages":[{"role":"user","content":"no key at all"}]}""";
        using var noKey = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };

        await _host.Http.SendAsync(noKey);
        await PostAsync(body, "k1");
        var other = await PostAsync(body, "k2");

        Assert.False(other.Headers.Contains("x-marginal-idempotent-replay"));
        Assert.Equal(3, UpstreamCalls);
    }

    private static List<string> DataLines(string sse) =>
        [.. sse.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal))];

    private static async Task<string> TextOf(AsyncCollectionResult<StreamingChatCompletionUpdate> updates)
    {
        var text = new StringBuilder();
        await foreach (var update in updates)
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }
        return text.ToString();
    }

    private sealed class IdempotencyKeyPolicy(string key) : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("Idempotency-Key", key);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override async ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("Idempotency-Key", key);
            await ProcessNextAsync(message, pipeline, currentIndex);
        }
    }
}

public sealed class IdempotentReplayOffTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() =>
        _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, "idempotency: { replay: false }"));

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Chat_ReplayOff_RetryGoesUpstreamIsRecordedAndBilledOnce()
    {
        for (var i = 0; i < 2; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = new StringContent("""{"model":"gpt-test","messages":[{"role":"user","content":"twice"}]}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("Idempotency-Key", "off");
            using var response = await _host.Http.SendAsync(request);
            Assert.False(response.Headers.Contains("x-marginal-idempotent-replay"));
        }

        Assert.Equal(2, _host.Primary.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal)));
        // Both calls are on the books; the retry as an adjustment of the key's record, which alone is billed.
        var kinds = new List<string>();
        await foreach (var record in _host.Ledger.ReadAsync())
        {
            kinds.Add(record.Kind);
        }
        Assert.Equal(["usage", "adjustment"], kinds.Order(StringComparer.Ordinal).Reverse());
    }

    [Fact]
    public async Task Chat_ReplayOff_KeyReusedWithAnotherBody_Is422()
    {
        foreach (var (content, expected) in new[] { ("first body", HttpStatusCode.OK), ("second body", HttpStatusCode.UnprocessableEntity) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = new StringContent($$"""{"model":"gpt-test","messages":[{"role":"user","content":"{{content}}"}]}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("Idempotency-Key", "off-reused");
            using var response = await _host.Http.SendAsync(request);
            Assert.Equal(expected, response.StatusCode);
        }

        Assert.Equal(1, _host.Primary.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal)));
    }
}
