using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Marginal.Core.Ledger;
using Marginal.Testing;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// The response cache through HTTP and the official SDK: headers, replayed streams, bypass, errors, and the ledger
/// record of a hit (cost 0, the original cost as lever <c>cache</c>). gpt-solo opts in to the semantic cache.
/// </summary>
public sealed partial class CacheTests : IAsyncLifetime
{
    private const string CacheYaml = """
        cache:
          semantic: { enabled: true, threshold: 0.85 }
          routes:
            gpt-solo: { semantic: true }
        """;

    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, CacheYaml));

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private Task<HttpResponseMessage> PostAsync(string model, string prompt, bool stream = false, params (string Name, string Value)[] headers)
    {
        var body = $$"""{"model":"{{model}}","temperature":0,"stream":{{(stream ? "true" : "false")}},"stream_options":{{(stream ? """{"include_usage":true}""" : "null")}},"messages":[{"role":"user","content":"{{prompt}}"}]}""";
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        return _host.Http.SendAsync(request);
    }

    private static string CacheHeader(HttpResponseMessage response) => response.Headers.GetValues("x-marginal-cache").Single();

    private async Task<UsageRecord> RecordOf(HttpResponseMessage response) =>
        (await _host.Ledger.FindAsync(response.Headers.GetValues("x-marginal-request-id").Single()))!;

    private int UpstreamChats => _host.Primary.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));

    [Fact]
    public async Task Chat_SameRequestTwice_HitMeteredAtZeroWithOriginalCostAsSaving()
    {
        var first = await PostAsync("gpt-test", "hello there friend");
        var second = await PostAsync("gpt-test", "hello there friend");

        Assert.Equal("miss", CacheHeader(first));
        Assert.Equal("hit-exact", CacheHeader(second));
        Assert.Contains("Echo: hello there friend", await second.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1, UpstreamChats);
        var original = await RecordOf(first);
        var hit = await RecordOf(second);
        Assert.True(original.CostUsd > 0);
        Assert.Equal((0m, "hit-exact", "gpt-test"), (hit.CostUsd, hit.CacheOutcome, hit.ServedModel));
        Assert.Equal(LeverSavings.Format([new("cache", original.CostUsd!.Value)]), hit.Levers);
        Assert.Equal(original.CostUsd, hit.SavingsUsd);
        Assert.Equal((original.InputTokens, original.OutputTokens), (hit.InputTokens, hit.OutputTokens));
    }

    [Fact]
    public async Task Stream_SecondTime_ReplayedWithSameSseEvents()
    {
        var first = await PostAsync("gpt-test", "stream this please", stream: true);
        var firstEvents = await SseEvents.ReadAsync(first);
        var second = await PostAsync("gpt-test", "stream this please", stream: true);
        var secondEvents = await SseEvents.ReadAsync(second);

        Assert.Equal(("miss", "hit-exact"), (CacheHeader(first), CacheHeader(second)));
        Assert.Equal(1, UpstreamChats);
        Assert.True(firstEvents.Count > 3);
        Assert.Equal(firstEvents.Select(Normalise), secondEvents.Select(Normalise));
        Assert.Equal("[DONE]", secondEvents[^1]);
    }

    [Theory]
    [InlineData("Cache-Control", "no-cache")]
    [InlineData("x-marginal-cache", "bypass")]
    public async Task Chat_OptOutHeader_BypassesCache(string header, string value)
    {
        await PostAsync("gpt-test", "hello there friend");

        var bypassed = await PostAsync("gpt-test", "hello there friend", headers: (header, value));

        Assert.Equal("bypass", CacheHeader(bypassed));
        Assert.Equal(2, UpstreamChats);
        Assert.Equal("bypass", (await RecordOf(bypassed)).CacheOutcome);
    }

    [Fact]
    public async Task Chat_UpstreamError_NotCached()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Status, Status: 400, Message: "bad on purpose"));

        var failed = await PostAsync("gpt-solo", "hello there friend");
        var next = await PostAsync("gpt-solo", "hello there friend");
        var third = await PostAsync("gpt-solo", "hello there friend");

        Assert.Equal(HttpStatusCode.BadRequest, failed.StatusCode);
        Assert.Equal(("miss", "hit-exact"), (CacheHeader(next), CacheHeader(third)));
    }

    [Fact]
    public async Task Sdk_ParaphraseOnSemanticRoute_HitWithSimilarity_NumbersDifferRefused()
    {
        var chat = _host.OpenAI.GetChatClient("gpt-solo");
        var options = new ChatCompletionOptions { Temperature = 0 };

        var first = await chat.CompleteChatAsync([new UserChatMessage("How do I reset my password on the website?")], options);
        var paraphrase = await chat.CompleteChatAsync([new UserChatMessage("How can I reset my password on the website?")], options);
        var otherYear = await chat.CompleteChatAsync([new UserChatMessage("How do I reset my password on the website in 2024?")], options);

        Assert.Equal(first.Value.Content[0].Text, paraphrase.Value.Content[0].Text);
        var headers = paraphrase.GetRawResponse().Headers;
        Assert.True(headers.TryGetValue("x-marginal-cache", out var outcome));
        Assert.Equal("hit-semantic", outcome);
        Assert.True(headers.TryGetValue("x-marginal-request-id", out var id));
        var record = (await _host.Ledger.FindAsync(id!))!;
        Assert.Equal(("hit-semantic", 0m), (record.CacheOutcome, record.CostUsd));
        Assert.InRange(record.CacheSimilarity!.Value, 0.85, 1.0);
        Assert.True(otherYear.GetRawResponse().Headers.TryGetValue("x-marginal-cache", out var refused));
        Assert.Equal("miss", refused);
    }

    private static string Normalise(string sseEvent) => Volatile().Replace(sseEvent, "");

    // Each response has its own id and creation time; everything else must be byte for byte the same.
    [GeneratedRegex(@"""(id|created)"":(""[^""]*""|\d+),?")]
    private static partial Regex Volatile();
}
