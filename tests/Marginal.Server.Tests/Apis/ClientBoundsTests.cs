using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using Marginal.Gateway.Wire.OpenAI;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// Client strings that reach the ledger, logs or headers are bounded (Wire/ClientBounds): one character past a bound is
/// 400 naming the parameter and leaves no ledger record; exactly at the bound is served.
/// </summary>
public sealed class ClientBoundsTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static string Chat(string extra = "", string model = "gpt-test") =>
        $$"""{"model":{{JsonSerializer.Serialize(model)}}{{extra}},"messages":[{"role":"user","content":"hello there"}]}""";

    private static string Metadata(int pairs, int keyLength, int valueLength) =>
        ",\"metadata\":" + JsonSerializer.Serialize(Enumerable.Range(0, pairs).ToDictionary(i => (i.ToString("D2", System.Globalization.CultureInfo.InvariantCulture) + new string('k', keyLength))[..keyLength], _ => new string('v', valueLength)));

    private static string Tags(int count, int length) => string.Join(",", Enumerable.Range(0, count).Select(i => (i.ToString("D2", System.Globalization.CultureInfo.InvariantCulture) + new string('t', length))[..length]));

    private async Task<HttpResponseMessage> PostAsync(string path, string body, string? tags = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (tags is not null)
        {
            request.Headers.Add("x-marginal-tags", tags);
        }
        return await _host.Http.SendAsync(request);
    }

    public static TheoryData<string, string, string?, string> PastTheBound => new()
    {
        { "/v1/chat/completions", Chat(model: new string('m', 257)), null, "model" },
        { "/v1/chat/completions", Chat(",\"user\":\"" + new string('u', 257) + "\""), null, "user" },
        { "/v1/chat/completions", Chat(Metadata(17, 8, 8)), null, "metadata" },
        { "/v1/chat/completions", Chat(Metadata(1, 65, 8)), null, "metadata" },
        { "/v1/chat/completions", Chat(Metadata(1, 8, 513)), null, "metadata.00kkkkkk" },
        { "/v1/chat/completions", Chat(), Tags(17, 8), "x-marginal-tags" },
        { "/v1/chat/completions", Chat(), Tags(1, 65), "x-marginal-tags" },
        { "/v1/embeddings", """{"model":"embed-test","input":"hi","user":""" + "\"" + new string('u', 257) + "\"}", null, "user" },
        { "/v1/embeddings", """{"input":"hi","model":""" + "\"" + new string('m', 257) + "\"}", null, "model" },
    };

    [Theory]
    [MemberData(nameof(PastTheBound))]
    public async Task Request_StringPastItsBound_400NamingTheParam_NothingRecorded(string path, string body, string? tags, string param)
    {
        using var response = await PostAsync(path, body, tags);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal(param, error["param"]!.GetValue<string>());
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Empty(await _host.Ledger.ReadAsync().ToListAsync());
    }

    [Fact]
    public async Task Chat_EveryStringAtItsBound_Served()
    {
        using var response = await PostAsync("/v1/chat/completions", Chat(",\"user\":\"" + new string('u', 256) + "\"" + Metadata(16, 64, 512)), Tags(16, 64));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Chat_HugeUnknownModelThroughTheSdk_400StringAboveMaxLength()
    {
        var chat = _host.OpenAI.GetChatClient(new string('m', 30_000));

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(400, error.Status);
        Assert.Contains("string_above_max_length", error.Message, StringComparison.Ordinal);
        Assert.Empty(await _host.Ledger.ReadAsync().ToListAsync());
    }

    [Fact]
    public async Task Feedback_RequestIdPastItsBound_400NamingRequestId()
    {
        using var response = await PostAsync("/v1/feedback", $$"""{"request_id":"{{new string('r', 513)}}","score":1}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("request_id", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["param"]!.GetValue<string>());
    }
}
