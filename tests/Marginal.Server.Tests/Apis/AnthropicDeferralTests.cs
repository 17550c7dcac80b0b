using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Marginal.Core.Ledger;

namespace Marginal.Server.Tests.Apis;

/// <summary>Deferred requests to an Anthropic-served model: gateway → FakeUpstream's Message Batches API → jobs API → ledger.</summary>
public sealed class AnthropicDeferralTests : IAsyncLifetime
{
    private const string KeyVariable = "MARGINAL_ANTHROPIC_DEFERRAL_TEST_KEY";

    private GatewayHost _host = null!;

    private static string Yaml(Testing.FakeUpstream primary, Testing.FakeUpstream secondary) => $"""
        server:
          auth: none
        pricing:
          book: prices.yaml
        deferral:
          enabled: true
          flush_interval: 50ms
          batch_providers: [anthropic]
        providers:
          anthropic:
            kind: anthropic
            base_url: {primary.AnthropicBaseUrl}
            api_key_env: {KeyVariable}
            timeout: 2s
        models:
          claude-batch:
            provider: anthropic
            upstream: claude-up
            price: claude-price
        """;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(KeyVariable, "sk-ant-deferral-test");
        _host = await GatewayHost.StartAsync(Yaml);
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<JsonNode> SubmitAsync(string content)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new
            {
                model = "claude-batch",
                max_tokens = 100,
                messages = new object[] { new { role = "system", content = "Be brief." }, new { role = "user", content } },
            }),
        };
        request.Headers.TryAddWithoutValidation("x-marginal-deadline", "1h");
        var response = await _host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    /// <summary>Polls the job until it is final (bounded: 15 s).</summary>
    private async Task<JsonNode> WaitForFinalAsync(string id)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            var job = JsonNode.Parse(await _host.Http.GetStringAsync($"/v1/marginal/jobs/{id}"))!;
            if (job["status"]!.GetValue<string>() is "completed" or "failed" or "expired")
            {
                return job;
            }
            await Task.Delay(25, timeout.Token);
        }
    }

    [Fact]
    public async Task Submit_AnthropicServedModel_CompletesThroughMessageBatchesAtTheBatchPrice()
    {
        var queued = await SubmitAsync("hello batch world");
        Assert.Equal("queued", queued["status"]!.GetValue<string>());

        var done = await WaitForFinalAsync(queued["id"]!.GetValue<string>());

        Assert.Equal("completed", done["status"]!.GetValue<string>());
        var response = done["response"]!;
        Assert.Equal("chat.completion", response["object"]!.GetValue<string>());
        Assert.Equal("Echo: hello batch world", response["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal("stop", response["choices"]![0]!["finish_reason"]!.GetValue<string>());
        // The upstream got one Message Batch in Anthropic's format, and no live Messages call.
        var paths = _host.Primary.Requests.Select(r => r.Path).ToList();
        Assert.Contains("/v1/messages/batches", paths);
        Assert.DoesNotContain("/v1/messages", paths);
        var created = _host.Primary.Requests.First(r => r.Path == "/v1/messages/batches").Json!;
        var parameters = created["requests"]![0]!["params"]!;
        Assert.Equal(done["id"]!.GetValue<string>(), created["requests"]![0]!["custom_id"]!.GetValue<string>());
        Assert.Equal(("claude-up", 100, "Be brief."), (parameters["model"]!.GetValue<string>(), parameters["max_tokens"]!.GetValue<int>(), parameters["system"]!.GetValue<string>()));
        Assert.Single(parameters["messages"]!.AsArray());

        await Task.Delay(200);
        var record = Assert.Single(await _host.Ledger.ReadAsync().ToListAsync());
        Assert.Equal(done["request_id"]!.GetValue<string>(), record.Id);
        // 5 prompt words (system and user) as input, plus the fake's 2 cache-read and 1 cache-write tokens; 4 reply words. claude-price
        // (USD per 1M): input 3, cached 0.3, 5-minute write 3.75, output 15; batch multiplier 0.5.
        Assert.Equal((8, 2, 1, 4), (record.InputTokens, record.CachedInputTokens, record.CacheWriteTokens, record.OutputTokens));
        var normal = (5 * 3m + 2 * 0.3m + 1 * 3.75m + 4 * 15m) / 1_000_000m;
        Assert.Equal(normal * 0.5m, record.CostUsd);
        var (lever, saving) = Assert.Single(LeverSavings.Parse(record.Levers));
        Assert.Equal(("deferral", normal * 0.5m), (lever, saving));
    }

    [Fact]
    public async Task Submit_LineErroredInMessageBatch_JobFailsWithOpenAIError()
    {
        var queued = await SubmitAsync("please FAIL-THIS-LINE now");

        var done = await WaitForFinalAsync(queued["id"]!.GetValue<string>());

        Assert.Equal("failed", done["status"]!.GetValue<string>());
        Assert.Equal("invalid_request_error", done["error"]!["type"]!.GetValue<string>());
        Assert.Equal("This request was rejected on purpose.", done["error"]!["message"]!.GetValue<string>());
    }
}
