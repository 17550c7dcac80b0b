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
        Assert.Equal(("claude-up", 100, "Be brief."), (parameters["model"]!.GetValue<string>(), parameters["max_tokens"]!.GetValue<int>(), SystemText(parameters)));
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

    // A 1x1 PNG, base64.
    private const string Png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    private static object RichRequest(string model) => new
    {
        model,
        max_tokens = 50,
        temperature = 0.2,
        top_p = 0.9,
        stop = new[] { "END" },
        user = "u-42",
        messages = new object[]
        {
            new { role = "system", content = "Be brief." },
            new
            {
                role = "user",
                content = new object[]
                {
                    new { type = "text", text = "weather in these pictures" },
                    new { type = "image_url", image_url = new { url = $"data:image/png;base64,{Png}" } },
                    new { type = "image_url", image_url = new { url = "https://example.com/cat.png" } },
                },
            },
        },
        tools = new object[]
        {
            new
            {
                type = "function",
                function = new
                {
                    name = "get_weather", description = "Weather for a city",
                    parameters = new { type = "object", properties = new { city = new { type = "string" } }, required = new[] { "city" } },
                },
            },
        },
        tool_choice = new { type = "function", function = new { name = "get_weather" } },
    };

    private async Task<JsonNode> DeferAsync(object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
        request.Headers.TryAddWithoutValidation("x-marginal-deadline", "1h");
        var response = await _host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return await WaitForFinalAsync(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["id"]!.GetValue<string>());
    }

    /// <summary>The system prompt of Messages params: a string, or text blocks (as the SDK's adapter sends it).</summary>
    private static string SystemText(JsonNode parameters) => parameters["system"] switch
    {
        JsonArray blocks => string.Concat(blocks.Select(b => b!["text"]!.GetValue<string>())),
        var value => value!.GetValue<string>(),
    };

    private JsonObject BatchParams() =>
        _host.Primary.Requests.Last(r => r.Path == "/v1/messages/batches").Json!["requests"]![0]!["params"]!.AsObject();

    [Fact]
    public async Task Submit_ToolsImagesAndSampling_SendsThemAsMessagesParamsAndMapsToolUseBack()
    {
        var done = await DeferAsync(RichRequest("claude-batch"));

        var parameters = BatchParams();
        Assert.Equal("Be brief.", SystemText(parameters));
        Assert.Equal((50, 0.2, 0.9), (parameters["max_tokens"]!.GetValue<int>(), parameters["temperature"]!.GetValue<double>(), parameters["top_p"]!.GetValue<double>()));
        Assert.Equal(["END"], parameters["stop_sequences"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal("u-42", parameters["metadata"]!["user_id"]!.GetValue<string>());
        var tool = parameters["tools"]![0]!;
        Assert.Equal("get_weather", tool["name"]!.GetValue<string>());
        Assert.Equal("string", tool["input_schema"]!["properties"]!["city"]!["type"]!.GetValue<string>());
        Assert.Equal(("tool", "get_weather"), (parameters["tool_choice"]!["type"]!.GetValue<string>(), parameters["tool_choice"]!["name"]!.GetValue<string>()));
        var blocks = parameters["messages"]![0]!["content"]!.AsArray();
        var images = blocks.Where(b => b!["type"]!.GetValue<string>() == "image").Select(b => b!["source"]!).ToList();
        Assert.Equal(2, images.Count);
        Assert.Equal(("base64", "image/png", Png), (images[0]["type"]!.GetValue<string>(), images[0]["media_type"]!.GetValue<string>(), images[0]["data"]!.GetValue<string>()));
        Assert.Equal(("url", "https://example.com/cat.png"), (images[1]["type"]!.GetValue<string>(), images[1]["url"]!.GetValue<string>()));
        // The fake calls the first offered tool with {"echo": <the user's text>}: the job's answer is an OpenAI tool call.
        Assert.Equal("completed", done["status"]!.GetValue<string>());
        var choice = done["response"]!["choices"]![0]!;
        Assert.Equal("tool_calls", choice["finish_reason"]!.GetValue<string>());
        Assert.Null(choice["message"]!["content"]);
        var call = Assert.Single(choice["message"]!["tool_calls"]!.AsArray())!;
        Assert.Equal((Testing.FakeUpstream.AnthropicToolUseId, "function", "get_weather"),
            (call["id"]!.GetValue<string>(), call["type"]!.GetValue<string>(), call["function"]!["name"]!.GetValue<string>()));
        Assert.Equal("weather in these pictures", JsonNode.Parse(call["function"]!["arguments"]!.GetValue<string>())!["echo"]!.GetValue<string>());
    }

    [Fact]
    public async Task Submit_ToolResultConversation_SendsToolUseAndToolResultBlocks()
    {
        var done = await DeferAsync(new
        {
            model = "claude-batch",
            messages = new object[]
            {
                new { role = "user", content = "weather in Paris?" },
                new
                {
                    role = "assistant", content = (string?)null,
                    tool_calls = new[] { new { id = "toolu_prev", type = "function", function = new { name = "get_weather", arguments = """{"city":"Paris"}""" } } },
                },
                new { role = "tool", tool_call_id = "toolu_prev", content = "sunny" },
            },
            tools = new object[] { new { type = "function", function = new { name = "get_weather", parameters = new { type = "object" } } } },
        });

        var messages = BatchParams()["messages"]!.AsArray();
        Assert.Equal(["user", "assistant", "user"], messages.Select(m => m!["role"]!.GetValue<string>()));
        var use = messages[1]!["content"]!.AsArray().Single(b => b!["type"]!.GetValue<string>() == "tool_use")!;
        Assert.Equal(("toolu_prev", "get_weather", "Paris"), (use["id"]!.GetValue<string>(), use["name"]!.GetValue<string>(), use["input"]!["city"]!.GetValue<string>()));
        var result = messages[2]!["content"]!.AsArray().Single(b => b!["type"]!.GetValue<string>() == "tool_result")!;
        Assert.Equal("toolu_prev", result["tool_use_id"]!.GetValue<string>());
        // No max_tokens from the client: the live provider's default (AnthropicProvider.DefaultMaxOutputTokens).
        Assert.Equal(4096, BatchParams()["max_tokens"]!.GetValue<int>());
        Assert.Equal("Tool said: sunny", done["response"]!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task Submit_SameRequestLiveAndDeferred_BatchParamsAreTheLiveMessagesRequest()
    {
        var live = await _host.Http.PostAsJsonAsync("/v1/chat/completions", RichRequest("claude-batch"));
        live.EnsureSuccessStatusCode();
        await DeferAsync(RichRequest("claude-batch"));

        var sentLive = _host.Primary.Requests.Last(r => r.Path == "/v1/messages").Json!.AsObject();
        var batched = BatchParams();

        // One mapping: the batch line is the live request (sampling fields included), without streaming.
        Assert.Equal(0.2, sentLive["temperature"]!.GetValue<double>());
        Assert.Equal(0.9, sentLive["top_p"]!.GetValue<double>());
        foreach (var name in new[] { "stream" })
        {
            sentLive.Remove(name);
            batched.Remove(name);
        }
        Assert.Equal(sentLive.ToJsonString(), batched.ToJsonString());
    }
}
