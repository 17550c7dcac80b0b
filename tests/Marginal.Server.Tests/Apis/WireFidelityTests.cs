using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// What an OpenAI-compatible upstream gets is what the client sent: tool and response schemas byte for byte, their
/// <c>strict</c> flags, <c>logprobs</c>, <c>top_logprobs</c> and <c>logit_bias</c>; and the upstream's logprobs come back.
/// </summary>
public sealed class WireFidelityTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<(HttpStatusCode Status, string Body)> PostAsync(string body)
    {
        var response = await _host.Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private JsonNode Upstream => _host.Primary.Requests.Last(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal)).Json!;

    private const string Schema = """{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}}}""";

    [Fact]
    public async Task Tools_StrictAndSchemaAsSent_ReachUpstreamUnchanged()
    {
        var (status, _) = await PostAsync($$$"""
            {"model":"gpt-solo","messages":[{"role":"user","content":"weather"}],
             "tools":[{"type":"function","function":{"name":"weather","description":"Forecast","strict":true,"parameters":{{{Schema}}} } },
                      {"type":"function","function":{"name":"plain","parameters":{{{Schema}}} } }]}
            """);

        Assert.Equal(HttpStatusCode.OK, status);
        // Prefix shaping sorts tools by name (a stable prompt-cache prefix); each is found by its name.
        var tools = Upstream["tools"]!.AsArray().ToDictionary(t => t!["function"]!["name"]!.GetValue<string>(), t => t!["function"]!);
        Assert.True(tools["weather"]["strict"]!.GetValue<bool>());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Schema), tools["weather"]["parameters"]), tools["weather"].ToJsonString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Schema), tools["plain"]["parameters"]), tools["plain"].ToJsonString());
        Assert.Null(tools["plain"]["strict"]);
        Assert.Null(tools["plain"]["description"]);
        // The client sent no tool_choice, so none is sent for it.
        Assert.Null(Upstream["tool_choice"]);
    }

    [Fact]
    public async Task ResponseFormat_StrictSchema_ReachesUpstreamUnchanged()
    {
        var (status, _) = await PostAsync($$$"""
            {"model":"gpt-solo","messages":[{"role":"user","content":"plan"}],
             "response_format":{"type":"json_schema","json_schema":{"name":"trip","strict":true,"schema":{{{Schema}}} } } }
            """);

        Assert.Equal(HttpStatusCode.OK, status);
        var format = Upstream["response_format"]!["json_schema"]!;
        Assert.Equal("trip", format["name"]!.GetValue<string>());
        Assert.True(format["strict"]!.GetValue<bool>());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Schema), format["schema"]), format.ToJsonString());
    }

    [Fact]
    public async Task Logprobs_NonStreamed_ForwardedAndReturned()
    {
        var (status, body) = await PostAsync("""
            {"model":"gpt-solo","messages":[{"role":"user","content":"hello"}],"logprobs":true,"top_logprobs":2,"logit_bias":{"50256":-100,"7":5}}
            """);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(Upstream["logprobs"]!.GetValue<bool>());
        Assert.Equal(2, Upstream["top_logprobs"]!.GetValue<int>());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"7":5,"50256":-100}"""), Upstream["logit_bias"]), Upstream["logit_bias"]!.ToJsonString());
        var logprobs = JsonNode.Parse(body)!["choices"]![0]!["logprobs"]!;
        Assert.Equal(-0.25, logprobs["content"]![0]!["logprob"]!.GetValue<double>());
        Assert.Equal(2, logprobs["content"]![0]!["top_logprobs"]!.AsArray().Count);
    }

    [Fact]
    public async Task Logprobs_Streamed_ChunksCarryThem()
    {
        var (status, body) = await PostAsync("""
            {"model":"gpt-solo","stream":true,"messages":[{"role":"user","content":"hello"}],"logprobs":true,"top_logprobs":1}
            """);

        Assert.Equal(HttpStatusCode.OK, status);
        var chunks = body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)).Select(l => JsonNode.Parse(l[6..])!).ToArray();
        var withText = chunks.Where(c => c["choices"]!.AsArray().Count > 0 && c["choices"]![0]!["delta"]!["content"]?.GetValue<string>() is { Length: > 0 }).ToArray();
        Assert.NotEmpty(withText);
        Assert.All(withText, c => Assert.Single(c["choices"]![0]!["logprobs"]!["content"]![0]!["top_logprobs"]!.AsArray()));
    }

    [Theory]
    [InlineData("\"top_logprobs\":3", "top_logprobs")]
    [InlineData("\"logprobs\":true,\"top_logprobs\":21", "top_logprobs")]
    [InlineData("\"logit_bias\":{\"abc\":1}", "logit_bias")]
    [InlineData("\"logit_bias\":{\"5\":101}", "logit_bias")]
    public async Task OpenAIOnlyFields_Invalid_Return400NamingThem(string field, string param)
    {
        var (status, body) = await PostAsync($$"""{"model":"gpt-solo","messages":[{"role":"user","content":"hi"}],{{field}}}""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(param, JsonNode.Parse(body)!["error"]!["param"]!.GetValue<string>());
        Assert.Empty(_host.Primary.Requests);
    }
}
