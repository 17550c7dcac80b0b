using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Testing;
using OpenAI.Embeddings;

namespace Marginal.Server.Tests.Apis;

public sealed class ModelsEmbeddingsHealthTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Models_List_ReturnsConfiguredModels()
    {
        var models = (await _host.OpenAI.GetOpenAIModelClient().GetModelsAsync()).Value;

        Assert.Equal(["embed-test", "gpt-backup", "gpt-solo", "gpt-test"], models.Select(m => m.Id).Order(StringComparer.Ordinal));
        Assert.Equal("primary", models.Single(m => m.Id == "gpt-test").OwnedBy);
    }

    [Fact]
    public async Task Models_GetKnown_ReturnsModel()
    {
        var model = (await _host.OpenAI.GetOpenAIModelClient().GetModelAsync("gpt-backup")).Value;

        Assert.Equal("secondary", model.OwnedBy);
    }

    [Fact]
    public async Task Models_GetUnknown_Returns404()
    {
        var response = await _host.Http.GetAsync("/v1/models/nope");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("model_not_found", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Embeddings_Sdk_ReturnsUpstreamVectors()
    {
        var client = _host.OpenAI.GetEmbeddingClient("embed-test");

        var embeddings = (await client.GenerateEmbeddingsAsync(["alpha", "beta gamma"])).Value;

        Assert.Equal(FakeUpstream.Embed("alpha", 8), embeddings[0].ToFloats().ToArray());
        Assert.Equal(FakeUpstream.Embed("beta gamma", 8), embeddings[1].ToFloats().ToArray());
        Assert.Equal(3, embeddings.Usage.InputTokenCount);
        Assert.Equal("embed-up", _host.Primary.Requests.Single().Json!["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task Embeddings_FloatFormatAndDimensions_ReturnsJsonNumbers()
    {
        var response = await _host.Http.PostAsync("/v1/embeddings", new StringContent("""{"model":"embed-test","input":"hello","dimensions":4,"encoding_format":"float"}""", Encoding.UTF8, "application/json"));
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(FakeUpstream.Embed("hello", 4), body["data"]![0]!["embedding"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray());
        Assert.Equal(4, _host.Primary.Requests.Single().Json!["dimensions"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("""{"model":"embed-test"}""", "input")]
    [InlineData("""{"model":"embed-test","input":[]}""", "input")]
    [InlineData("""{"model":"embed-test","input":"x","encoding_format":"hex"}""", "encoding_format")]
    [InlineData("""{"model":"embed-test","input":{"a":1}}""", "input")]
    public async Task Embeddings_BadRequest_Returns400WithParam(string body, string param)
    {
        var response = await _host.Http.PostAsync("/v1/embeddings", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(param, JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["param"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("gpt-test")]
    [InlineData("no-such-model")]
    public async Task Embeddings_ModelNotAnEmbeddingModel_Returns404ModelNotFound(string model)
    {
        var response = await _host.Http.PostAsync("/v1/embeddings", new StringContent($$"""{"model":"{{model}}","input":"x"}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("model_not_found", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["code"]!.GetValue<string>());
    }

    [Fact]
    public void Start_ModelWithoutPrice_WarnsOnceForThatModelOnly()
    {
        var warnings = _host.Logs.Entries.Where(e => e.Message.Contains("has no price-book entry", StringComparison.Ordinal)).ToList();

        var warning = Assert.Single(warnings);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, warning.Level);
        Assert.StartsWith("Model gpt-solo (upstream solo-model)", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HealthAndReadiness_WithModels_AreOk()
    {
        Assert.Equal(HttpStatusCode.OK, (await _host.Http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _host.Http.GetAsync("/readyz")).StatusCode);
    }

    [Fact]
    public async Task Metrics_AfterRequests_ExposesGatewayInstruments()
    {
        var chat = _host.OpenAI.GetChatClient("gpt-test");
        await chat.CompleteChatAsync([new OpenAI.Chat.UserChatMessage("count me")]);
        await foreach (var _ in chat.CompleteChatStreamingAsync([new OpenAI.Chat.UserChatMessage("and me")]))
        {
        }

        // The Prometheus exporter caches its scrape for a moment; ask until the counters show up.
        var text = "";
        for (var i = 0; i < 50 && !text.Contains("marginal_gateway_time_to_first_token", StringComparison.Ordinal); i++)
        {
            text = await _host.Http.GetStringAsync("/metrics");
            await Task.Delay(100);
        }

        Assert.Contains("marginal_gateway_requests_total{", text, StringComparison.Ordinal);
        Assert.Contains("model=\"gpt-test\"", text, StringComparison.Ordinal);
        Assert.Contains("marginal_gateway_request_duration_seconds_bucket", text, StringComparison.Ordinal);
        Assert.Contains("marginal_gateway_time_to_first_token_seconds_bucket", text, StringComparison.Ordinal);
        Assert.Contains("marginal_gateway_tokens_total{", text, StringComparison.Ordinal);
        // ASP.NET Core's request instruments stay; its memory-pool meter (counted per buffer) is not collected.
        Assert.Contains("http_server_request_duration_seconds_bucket", text, StringComparison.Ordinal);
        Assert.DoesNotContain("aspnetcore_memory_pool", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_LatencyHistograms_HaveSecondScaleBucketsAndCostIsCounted()
    {
        var chat = _host.OpenAI.GetChatClient("gpt-test");
        await chat.CompleteChatAsync([new OpenAI.Chat.UserChatMessage("count my cost")]);
        await foreach (var _ in chat.CompleteChatStreamingAsync([new OpenAI.Chat.UserChatMessage("and time my first token")]))
        {
        }

        var text = "";
        for (var i = 0; i < 50 && !(text.Contains("marginal_gateway_time_to_first_token", StringComparison.Ordinal) && text.Contains("marginal_gateway_cost", StringComparison.Ordinal)); i++)
        {
            text = await _host.Http.GetStringAsync("/metrics");
            await Task.Delay(100);
        }

        string[] durationBounds = [.. BucketBounds(text, "marginal_gateway_request_duration_seconds_bucket")];
        string[] firstTokenBounds = [.. BucketBounds(text, "marginal_gateway_time_to_first_token_seconds_bucket")];
        Assert.Equal([.. Telemetry.GatewayMetrics.DurationBuckets.Select(Format), "+Inf"], durationBounds);
        Assert.Equal([.. Telemetry.GatewayMetrics.FirstTokenBuckets.Select(Format), "+Inf"], firstTokenBounds);
        var cost = text.Split('\n').Single(l => l.StartsWith("marginal_gateway_cost", StringComparison.Ordinal) && l.Contains("model=\"gpt-test\"", StringComparison.Ordinal));
        Assert.Contains("tenant=\"default\"", cost, StringComparison.Ordinal);
        Assert.True(double.Parse(cost[(cost.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture) > 0, cost);
    }

    private static string Format(double bound) => bound.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The distinct <c>le</c> bounds of one histogram's series, in the order exported.</summary>
    private static IEnumerable<string> BucketBounds(string text, string series) =>
        text.Split('\n').Where(l => l.StartsWith(series + "{", StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf("le=\"", StringComparison.Ordinal) + 4)..])
            .Select(l => l[..l.IndexOf('"', StringComparison.Ordinal)])
            .Distinct();

    [Fact]
    public async Task EveryReadEndpoint_Served_LogsNoError()
    {
        foreach (var path in new[] { "/v1/models", "/v1/models/gpt-test", "/v1/models/nope", "/healthz", "/readyz", "/metrics", "/v1/unknown" })
        {
            await _host.Http.GetAsync(path);
        }
        await _host.Http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        await _host.Http.PostAsync("/v1/embeddings", new StringContent("""{"model":"embed-test","input":"hi"}""", Encoding.UTF8, "application/json"));

        Assert.DoesNotContain(_host.Logs.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Error);
    }
}
