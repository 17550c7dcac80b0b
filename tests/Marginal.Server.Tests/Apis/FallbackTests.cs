using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Testing;

namespace Marginal.Server.Tests.Apis;

/// <summary><c>gpt-test</c> runs on primary and falls back to <c>gpt-backup</c> on secondary.</summary>
public sealed class FallbackTests : IAsyncLifetime
{
    private const string Request = """{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""";
    private const string StreamRequest = """{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi there"}]}""";
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private Task<HttpResponseMessage> PostAsync(string body) =>
        _host.Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

    public static TheoryData<Fault> RetryableFaults => new()
    {
        new Fault(FaultKind.Status, 429),
        new Fault(FaultKind.Status, 500),
        new Fault(FaultKind.Status, 502),
        new Fault(FaultKind.Status, 503),
        new Fault(FaultKind.Status, 504),
        new Fault(FaultKind.Delay, Delay: TimeSpan.FromSeconds(5)),
        new Fault(FaultKind.MalformedJson),
    };

    [Theory]
    [MemberData(nameof(RetryableFaults))]
    public async Task ChatCompletions_PrimaryFails_ServedByFallback(Fault fault)
    {
        _host.Primary.Enqueue(fault);

        var response = await PostAsync(Request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("gpt-backup", response.Headers.GetValues("x-marginal-model").Single());
        Assert.Equal("secondary", response.Headers.GetValues("x-marginal-provider").Single());
        Assert.Equal("2", response.Headers.GetValues("x-marginal-attempts").Single());
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("backup-model", body["model"]!.GetValue<string>());
        Assert.Single(_host.Primary.Requests);
        Assert.Single(_host.Secondary.Requests);
    }

    [Fact]
    public async Task ChatCompletions_PrimaryUnreachable_ServedByFallback()
    {
        await _host.Primary.DisposeAsync();

        var response = await PostAsync(Request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("gpt-backup", response.Headers.GetValues("x-marginal-model").Single());
    }

    [Fact]
    public async Task ChatCompletions_AllFail_ReturnsLastError()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 500));
        _host.Secondary.Enqueue(new Fault(FaultKind.Status, 503, Message: "Secondary is down."));

        var response = await PostAsync(Request);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        var message = error["message"]!.GetValue<string>();
        Assert.StartsWith("Provider 'primary' failed (status 500)", message, StringComparison.Ordinal);
        Assert.EndsWith("Then: Provider 'secondary' is unavailable (status 503): Secondary is down.", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ChatCompletions_RetryAfterFromPrimary_SkipsPrimaryUntilItPasses()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 429, RetryAfter: "30"));
        await PostAsync(Request);

        var second = await PostAsync(Request);

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("gpt-backup", second.Headers.GetValues("x-marginal-model").Single());
        // The primary asked for 30 s of quiet and got it: one request only, the one that was refused.
        Assert.Single(_host.Primary.Requests);
        Assert.Equal(2, _host.Secondary.Requests.Count);
    }

    [Fact]
    public async Task ChatCompletions_RetryAfterAndNoFallback_Returns429WithRemainingWait()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 429, RetryAfter: "30"));
        await PostAsync("""{"model":"gpt-solo","messages":[{"role":"user","content":"hi"}]}""");

        var second = await PostAsync("""{"model":"gpt-solo","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.InRange(second.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 30);
        Assert.Single(_host.Primary.Requests);
    }

    [Theory]
    [MemberData(nameof(RetryableFaults))]
    public async Task ChatCompletionsStream_PrimaryFailsBeforeFirstByte_ServedByFallback(Fault fault)
    {
        _host.Primary.Enqueue(fault);

        var response = await PostAsync(StreamRequest);
        var events = await SseEvents.ReadAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("gpt-backup", response.Headers.GetValues("x-marginal-model").Single());
        Assert.Equal("Echo: hi there", SseEvents.Text(events));
        Assert.Equal("[DONE]", events[^1]);
    }

    [Fact]
    public async Task ChatCompletionsStream_ConnectionResetAfterFirstBytes_EndsWithErrorEventAndNoFallback()
    {
        // The upstream holds after its first content chunk until the client has it, then resets the connection:
        // bytes have reached the client, so the gateway must not fail over.
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _host.Primary.HoldAfterFirstChunk = hold;
        _host.Primary.Enqueue(new Fault(FaultKind.ResetMidStream, AfterChunks: 2));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(StreamRequest, Encoding.UTF8, "application/json") };

        using var response = await _host.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var events = await SseEvents.ReadReleasingAsync(response, "Echo:", hold);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Echo:", SseEvents.Text(events));
        var error = JsonNode.Parse(events[^1])!["error"]!;
        Assert.Equal("upstream_connection_lost", error["code"]!.GetValue<string>());
        Assert.DoesNotContain("[DONE]", events);
        Assert.Empty(_host.Secondary.Requests);
    }

    [Fact]
    public async Task ChatCompletionsStream_TruncatedUpstream_EndsWithErrorEvent()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.TruncatedStream, AfterChunks: 2));

        var response = await PostAsync(StreamRequest);
        var events = await SseEvents.ReadAsync(response);

        Assert.Equal("Echo:", SseEvents.Text(events));
        var error = JsonNode.Parse(events[^1])!["error"]!;
        Assert.Equal("upstream_stream_truncated", error["code"]!.GetValue<string>());
        Assert.DoesNotContain("[DONE]", events);
    }

    [Theory]
    [InlineData(FaultKind.TruncatedStream, "upstream_stream_truncated")]
    [InlineData(FaultKind.ResetMidStream, "upstream_connection_lost")]
    public async Task ChatCompletionsStream_BrokenAfterFirstChunk_PartialUsageIsMetered(FaultKind kind, string code)
    {
        // As above: the upstream holds after its first chunk until the client has it, then breaks.
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _host.Primary.HoldAfterFirstChunk = hold;
        _host.Primary.Enqueue(new Fault(kind, AfterChunks: 2));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(StreamRequest, Encoding.UTF8, "application/json") };

        using var response = await _host.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await SseEvents.ReadReleasingAsync(response, "Echo:", hold);

        var records = new List<Marginal.Core.Ledger.UsageRecord>();
        for (var i = 0; i < 50 && records.Count == 0; i++)
        {
            await foreach (var record in _host.Ledger.ReadAsync())
            {
                records.Add(record);
            }
            await Task.Delay(records.Count == 0 ? 100 : 0);
        }
        var broken = Assert.Single(records);
        Assert.Equal(code, broken.Status);
        Assert.True(broken.Streamed);
        // "Echo:" reached the client: the tokens it used are counted and priced, not dropped with the stream.
        Assert.True(broken.OutputTokens >= 1, $"output tokens {broken.OutputTokens}");
        Assert.True(broken.InputTokens >= 1, $"input tokens {broken.InputTokens}");
        Assert.True(broken.CostUsd > 0m, $"cost {broken.CostUsd}");
    }
}
