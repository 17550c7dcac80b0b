using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Testing;

namespace Marginal.Server.Tests.Apis;

/// <summary>Every malformed request and every upstream failure gets OpenAI's error schema and the matching status.</summary>
public sealed class ErrorResponseTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<(HttpStatusCode Status, JsonNode Error, HttpResponseMessage Response)> PostAsync(string body, string path = "/v1/chat/completions")
    {
        var response = await _host.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        return (response.StatusCode, json["error"]!, response);
    }

    private static void AssertSchema(JsonNode error)
    {
        var obj = error.AsObject();
        Assert.True(obj.ContainsKey("message") && obj.ContainsKey("type") && obj.ContainsKey("param") && obj.ContainsKey("code"));
        Assert.DoesNotContain("   at ", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":[null]}]}""")]
    [InlineData("""{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"a"},null]}]}""")]
    public async Task ChatCompletions_NullContentPart_Returns400NotInternalError(string body)
    {
        var (status, error, _) = await PostAsync(body);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        AssertSchema(error);
    }

    [Theory]
    [InlineData("{not json", null, "invalid_json")]
    [InlineData("", null, "invalid_json")]
    [InlineData("[1,2]", null, "invalid_json")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""", "model", "missing_required_parameter")]
    [InlineData("""{"model":"gpt-test"}""", "messages", "missing_required_parameter")]
    [InlineData("""{"model":"gpt-test","messages":[]}""", "messages", "missing_required_parameter")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}""", "temperature", "invalid_type")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"temperature":3}""", "temperature", "invalid_value")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"top_p":-1}""", "top_p", "invalid_value")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"max_tokens":0}""", "max_tokens", "invalid_value")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"n":2}""", "n", "unsupported_value")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"wizard","content":"hi"}]}""", "messages[0].role", "invalid_value")]
    [InlineData("""{"model":"gpt-test","messages":[{"content":"hi"}]}""", "messages[0].role", "missing_required_parameter")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":42}]}""", "messages[0].content", "invalid_type")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"tool","content":"x"}]}""", "messages[0].tool_call_id", "missing_required_parameter")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":[{"type":"video","text":"x"}]}]}""", "messages[0].content[0].type", "invalid_value")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}""", "messages[0].tool_calls[0].function.arguments", "invalid_value")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{}}]}""", "tools[0].function.name", "missing_required_parameter")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"tool_choice":"sometimes"}""", "tool_choice", "invalid_value")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"yaml"}}""", "response_format.type", "invalid_value")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}""", "stop", "invalid_value")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}""", "stream_options", "invalid_value")]
    [InlineData("""{"model":"gpt-test","messages":[null]}""", "messages[0]", "invalid_type")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"},null]}""", "messages[1]", "invalid_type")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"tools":[null]}""", "tools[0]", "invalid_type")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"assistant","tool_calls":[null]}]}""", "messages[0].tool_calls[0]", "invalid_type")]
    public async Task ChatCompletions_MalformedRequest_Returns400WithParam(string body, string? param, string code)
    {
        var (status, error, _) = await PostAsync(body);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        AssertSchema(error);
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal(param, error["param"]?.GetValue<string>());
        Assert.Equal(code, error["code"]!.GetValue<string>());
        Assert.Empty(_host.Primary.Requests);
    }

    [Theory]
    [InlineData("""{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("""{"model":"embed-test","messages":[{"role":"user","content":"hi"}]}""")]
    public async Task ChatCompletions_UnknownModel_Returns404ModelNotFound(string body)
    {
        var (status, error, _) = await PostAsync(body);

        Assert.Equal(HttpStatusCode.NotFound, status);
        AssertSchema(error);
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal("model", error["param"]?.GetValue<string>());
        Assert.Equal("model_not_found", error["code"]!.GetValue<string>());
        Assert.Empty(_host.Primary.Requests);
    }

    [Fact]
    public async Task ChatCompletions_UnknownModelThroughSdk_RaisesNotFound()
    {
        var error = await Assert.ThrowsAsync<System.ClientModel.ClientResultException>(() =>
            _host.OpenAI.GetChatClient("no-such-model").CompleteChatAsync("hi"));

        Assert.Equal(404, error.Status);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    public async Task ChatCompletions_BodyNotJson_Returns415(string contentType)
    {
        var content = new StringContent("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);

        var response = await _host.Http.PostAsync("/v1/chat/completions", content);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        AssertSchema(error);
        Assert.Equal("unsupported_media_type", error["code"]!.GetValue<string>());
        Assert.Empty(_host.Primary.Requests);
    }

    [Fact]
    public async Task ChatCompletions_ToolSchemaNotUtf8_Returns400AndSendsNothing()
    {
        var body = Encoding.UTF8.GetBytes("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","description":"@@"}}}]}""");
        var at = Array.IndexOf(body, (byte)'@');
        body[at] = 0xC3;
        body[at + 1] = 0x28; // a lead byte followed by a non-continuation byte

        var response = await _host.Http.PostAsync("/v1/chat/completions", new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("tools[0].function.parameters", error["param"]!.GetValue<string>());
        Assert.Empty(_host.Primary.Requests);
    }

    [Fact]
    public async Task ChatCompletions_ToolSchemaWithLoneSurrogateEscape_Returns400()
    {
        var (status, error, _) = await PostAsync("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","description":"\udc00"}}}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("tools[0].function.parameters", error["param"]!.GetValue<string>());
        Assert.Empty(_host.Primary.Requests);
    }

    [Fact]
    public async Task Feedback_BodyNotUtf8_Returns400()
    {
        var body = Encoding.UTF8.GetBytes("""{"request_id":"req_@@","score":1}""");
        var at = Array.IndexOf(body, (byte)'@');
        body[at] = 0xFF;
        body[at + 1] = 0xFE;

        var response = await _host.Http.PostAsync("/v1/feedback", new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertSchema(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!);
    }

    [Theory]
    [InlineData("key\u0001one")]
    [InlineData("clé")]
    public async Task ChatCompletions_IdempotencyKeyNotPrintableAscii_Returns400(string escapedKey)
    {
        var key = System.Text.RegularExpressions.Regex.Unescape(escapedKey);
        // HttpClient refuses such header values, so the request is written by hand on a socket.
        var body = """{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""";
        var head = $"POST /v1/chat/completions HTTP/1.1\r\nHost: {_host.BaseUrl.Authority}\r\nContent-Type: application/json\r\nIdempotency-Key: {key}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        using var socket = new System.Net.Sockets.TcpClient();
        await socket.ConnectAsync(_host.BaseUrl.Host, _host.BaseUrl.Port);
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(head + body));
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var answer = await reader.ReadToEndAsync();

        Assert.StartsWith("HTTP/1.1 400", answer, StringComparison.Ordinal);
        Assert.Empty(_host.Primary.Requests);
    }

    [Fact]
    public async Task ChatCompletions_BodyOverLimitByContentLength_Returns413()
    {
        var body = $$"""{"model":"gpt-test","messages":[{"role":"user","content":"{{new string('x', 70_000)}}"}]}""";

        var (status, error, _) = await PostAsync(body);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        AssertSchema(error);
        Assert.Equal("request_too_large", error["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task ChatCompletions_ChunkedBodyOverLimit_Returns413()
    {
        var body = $$"""{"model":"gpt-test","messages":[{"role":"user","content":"{{new string('x', 70_000)}}"}]}""";
        using var content = new PushStreamContent(Encoding.UTF8.GetBytes(body));

        var response = await _host.Http.PostAsync("/v1/chat/completions", content);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("request_too_large", error["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task UnknownUrl_Returns404InOpenAIFormat()
    {
        var response = await _host.Http.GetAsync("/v1/nothing-here");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        AssertSchema(error);
        Assert.Equal("unknown_url", error["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task ChatCompletions_Get_Returns405InOpenAIFormat()
    {
        var response = await _host.Http.GetAsync("/v1/chat/completions");

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        AssertSchema(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!);
    }

    [Fact]
    public async Task ChatCompletions_UpstreamRateLimitedWithoutFallback_Returns429WithRetryAfter()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 429, RetryAfter: "7", Message: "Slow down, please."));

        var (status, error, response) = await PostAsync("""{"model":"gpt-solo","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("rate_limit_error", error["type"]!.GetValue<string>());
        Assert.Contains("Slow down, please.", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
    }

    [Theory]
    [InlineData(500, HttpStatusCode.BadGateway, "upstream_error")]
    [InlineData(502, HttpStatusCode.BadGateway, "upstream_error")]
    [InlineData(503, HttpStatusCode.ServiceUnavailable, "upstream_unavailable")]
    [InlineData(504, HttpStatusCode.GatewayTimeout, "upstream_timeout")]
    [InlineData(401, HttpStatusCode.BadGateway, "upstream_auth_failed")]
    public async Task ChatCompletions_UpstreamFailsWithoutFallback_MapsStatus(int upstreamStatus, HttpStatusCode expected, string code)
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Status, upstreamStatus, Message: "Upstream trouble."));

        var (status, error, _) = await PostAsync("""{"model":"gpt-solo","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(expected, status);
        AssertSchema(error);
        Assert.Equal(code, error["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task ChatCompletions_UpstreamRejectsRequest_Returns400WithUpstreamMessage()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Status, 400, Message: "This model does not support images."));

        var (status, error, _) = await PostAsync("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("This model does not support images.", error["message"]!.GetValue<string>());
        // A request the upstream calls invalid is not retried on the fallback.
        Assert.Empty(_host.Secondary.Requests);
    }

    [Fact]
    public async Task ChatCompletions_UpstreamTooSlow_Returns504()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.Delay, Delay: TimeSpan.FromSeconds(5)));

        var (status, error, _) = await PostAsync("""{"model":"gpt-solo","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.GatewayTimeout, status);
        Assert.Equal("upstream_timeout", error["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task ChatCompletions_UpstreamSendsMalformedJson_Returns502()
    {
        _host.Primary.Enqueue(new Fault(FaultKind.MalformedJson));

        var (status, error, _) = await PostAsync("""{"model":"gpt-solo","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.BadGateway, status);
        Assert.Equal("upstream_malformed_response", error["code"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"model":"gpt-solo","messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("""{"model":"gpt-solo","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}""")]
    public async Task ChatCompletions_UpstreamResetsMidBody_Returns502ConnectionLost(string body)
    {
        _host.Primary.Enqueue(new Fault(FaultKind.ResetMidBody));

        var (status, error, _) = await PostAsync(body);

        Assert.Equal(HttpStatusCode.BadGateway, status);
        Assert.Equal("upstream_connection_lost", error["code"]!.GetValue<string>());
        Assert.Contains("was lost", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    /// <summary>Content without a length: the body arrives chunked, so only reading it can find it too large.</summary>
    private sealed class PushStreamContent(byte[] bytes) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            for (var i = 0; i < bytes.Length; i += 4096)
            {
                await stream.WriteAsync(bytes.AsMemory(i, Math.Min(4096, bytes.Length - i)));
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
