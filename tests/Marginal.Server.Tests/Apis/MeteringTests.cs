using System.Net;
using System.Text;
using Marginal.Core.Ledger;
using Marginal.Gateway.Tokens;
using Marginal.Testing;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// Every request through the gateway is priced and in the ledger. Prices are GatewayHost's round test book:
/// gpt-test at 2 / 0.5 cached / 8 per 1M tokens, gpt-backup at 1 / 4, gpt-solo unpriced. The fake upstream reports
/// one token per word.
/// </summary>
public sealed class MeteringTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private Task<HttpResponseMessage> PostAsync(string body, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return _host.Http.SendAsync(request);
    }

    private async Task<UsageRecord> RecordOf(HttpResponseMessage response) =>
        (await _host.Ledger.FindAsync(response.Headers.GetValues("x-marginal-request-id").Single()))!;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ChatBothWays_DeepSeekStyleCacheHits_AreCachedInputInTheLedger(bool stream)
    {
        _host.Primary.CachedTokens = 2;
        _host.Primary.DeepSeekCacheUsage = true;

        var response = await PostAsync($$"""{"model":"gpt-test","stream":{{(stream ? "true" : "false")}},"stream_options":{{(stream ? """{"include_usage":true}""" : "null")}},"messages":[{"role":"user","content":"hello there friend"}]}""");
        await response.Content.ReadAsStringAsync();

        var record = await RecordOf(response);
        Assert.Equal((3, 2), (record.InputTokens, record.CachedInputTokens));
        Assert.Equal(0.000035m, record.CostUsd);
    }

    [Fact]
    public async Task Chat_CachedTokensReported_CostsCachedAtCachedPriceInHeaderAndLedger()
    {
        _host.Primary.CachedTokens = 2;
        var chat = _host.OpenAI.GetChatClient("gpt-test");

        var result = await chat.CompleteChatAsync([new UserChatMessage("hello there friend")]);

        // prompt 3 (2 cached), completion "Echo: hello there friend" = 4: (1×2 + 2×0.5 + 4×8) / 1M
        var headers = result.GetRawResponse().Headers;
        Assert.True(headers.TryGetValue("x-marginal-cost-usd", out var cost));
        Assert.Equal("0.000035", cost);
        Assert.True(headers.TryGetValue("x-marginal-request-id", out var id));
        var record = await _host.Ledger.FindAsync(id!);
        Assert.NotNull(record);
        Assert.Equal(0.000035m, record.CostUsd);
        Assert.Equal((3, 2, 4), (record.InputTokens, record.CachedInputTokens, record.OutputTokens));
        Assert.Equal(("reported", "ok", "api", "default"), (record.UsageSource, record.Status, record.CapacitySource, record.Tenant));
        Assert.Equal(("gpt-test", "gpt-test", "primary"), (record.RequestedModel, record.ServedModel, record.Provider));
        Assert.True(headers.TryGetValue("x-marginal-model", out var model) && model == "gpt-test");
        Assert.True(headers.TryGetValue("x-marginal-provider", out var provider) && provider == "primary");
    }

    [Fact]
    public async Task ChatStream_WithUsage_RecordIsDurableWhenDoneArrivesAndCostIsAComment()
    {
        var response = await PostAsync("""{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two"}]}""");
        var raw = await response.Content.ReadAsStringAsync();

        // prompt 2, completion "Echo: one two" = 3: (2×2 + 3×8) / 1M
        Assert.Contains(": x-marginal-cost-usd 0.000028\n\n", raw, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", raw, StringComparison.Ordinal);
        var record = await RecordOf(response);
        Assert.True(record.Streamed);
        Assert.Equal(0.000028m, record.CostUsd);
        Assert.NotNull(record.TimeToFirstTokenMs);
        Assert.True(record.LatencyMs >= record.TimeToFirstTokenMs);
    }

    [Fact]
    public async Task ChatStream_UpstreamReportsNoUsage_CountsStreamedTextWithTokenizer()
    {
        _host.Primary.OmitUsage = true;
        _host.Primary.ReplyText = "Tokenizers count what providers forget to report.";

        var response = await PostAsync("""{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"count me"}]}""");
        await response.Content.ReadAsStringAsync();

        var record = await RecordOf(response);
        Assert.Equal("counted", record.UsageSource);
        Assert.Equal(TokenCounter.CountText("o200k_base", "Tokenizers count what providers forget to report."), record.OutputTokens);
        Assert.Equal(TokenCounter.CountPrompt("o200k_base", [new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.User, "count me")]), record.InputTokens);
        Assert.Equal((record.InputTokens * 2m + record.OutputTokens * 8m) / 1_000_000m, record.CostUsd);
    }

    [Fact]
    public async Task Chat_SameIdempotencyKeyTwice_RecordedAndBilledOnce()
    {
        const string body = """{"model":"gpt-test","messages":[{"role":"user","content":"pay once"}]}""";

        var first = await PostAsync(body, "order-42");
        var second = await PostAsync(body, "order-42");

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("default:order-42", first.Headers.GetValues("x-marginal-request-id").Single());
        Assert.False(first.Headers.Contains("x-marginal-duplicate"));
        Assert.Equal("true", second.Headers.GetValues("x-marginal-duplicate").Single());
        Assert.Equal(1, await _host.Ledger.CountAsync());
    }

    [Fact]
    public async Task Chat_FailedThenRetriedWithSameKey_SuccessIsBilledUnderTheKey()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 500));
        const string body = """{"model":"gpt-solo","messages":[{"role":"user","content":"try again"}]}""";

        var failed = await PostAsync(body, "retry-7");
        var retried = await PostAsync(body, "retry-7");

        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        Assert.False(retried.Headers.Contains("x-marginal-duplicate"));
        var records = new List<UsageRecord>();
        await foreach (var r in _host.Ledger.ReadAsync())
        {
            records.Add(r);
        }
        Assert.Equal(2, records.Count);
        var failure = Assert.Single(records, r => r.Status != "ok");
        Assert.StartsWith("default:retry-7~", failure.Id, StringComparison.Ordinal);
        Assert.Equal((0, 0), (failure.InputTokens, failure.OutputTokens));
        Assert.Equal("default:retry-7", Assert.Single(records, r => r.Status == "ok").Id);
    }

    [Fact]
    public async Task Chat_ServedByFallback_PricedAtTheFallbacksPrice()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 503));

        var response = await PostAsync("""{"model":"gpt-test","messages":[{"role":"user","content":"a b c d"}]}""");

        // prompt 4, completion "Echo: a b c d" = 5 at gpt-backup's 1 / 4: (4×1 + 5×4) / 1M
        var record = await RecordOf(response);
        Assert.Equal(("gpt-test", "gpt-backup", "rented", 2), (record.RequestedModel, record.ServedModel, record.CapacitySource, record.Attempts));
        Assert.Equal(0.000024m, record.CostUsd);
        Assert.Equal("0.000024", response.Headers.GetValues("x-marginal-cost-usd").Single());
    }

    [Fact]
    public async Task Chat_UnpricedModel_RecordedWithoutCostOrCostHeader()
    {
        var response = await PostAsync("""{"model":"gpt-solo","messages":[{"role":"user","content":"free?"}]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("x-marginal-cost-usd"));
        var record = await RecordOf(response);
        Assert.Null(record.CostUsd);
        Assert.Null(record.CapacitySource);
        Assert.Equal(1, record.InputTokens);
    }

    [Fact]
    public async Task Embeddings_Priced_RecordedWithInputTokensAndCostHeader()
    {
        var response = await _host.Http.PostAsync("/v1/embeddings", new StringContent("""{"model":"embed-test","input":["one two three","four five"]}""", Encoding.UTF8, "application/json"));

        // 5 words reported as 5 prompt tokens at 0.02 per 1M
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("0.0000001", response.Headers.GetValues("x-marginal-cost-usd").Single());
        var record = await RecordOf(response);
        Assert.Equal((5L, 0L, "reported", "embed-test"), (record.InputTokens, record.OutputTokens, record.UsageSource, record.ServedModel));
        Assert.Equal(0.0000001m, record.CostUsd);
    }
}
