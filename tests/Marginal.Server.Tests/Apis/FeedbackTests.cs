using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace Marginal.Server.Tests.Apis;

public sealed class FeedbackTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<string> ChatAsync()
    {
        var response = await _host.Http.PostAsJsonAsync("/v1/chat/completions", new { model = "gpt-test", messages = new[] { new { role = "user", content = "hi" } } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return response.Headers.GetValues("x-marginal-request-id").Single();
    }

    private Task<HttpResponseMessage> FeedbackAsync(string body) =>
        _host.Http.PostAsync("/v1/feedback", new StringContent(body, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task Feedback_ForOwnRequest_IsStoredWithScoreAndOutcome()
    {
        var id = await ChatAsync();

        var response = await FeedbackAsync($$"""{"request_id":"{{id}}","score":0.75,"outcome":"ticket_resolved"}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("marginal.feedback", body["object"]!.GetValue<string>());
        var stored = Assert.Single(await _host.Ledger.ReadFeedbackAsync().ToListAsync());
        Assert.Equal((id, 0.75, "ticket_resolved", "default"), (stored.RequestId, stored.Score, stored.Outcome, stored.Tenant));
    }

    [Fact]
    public async Task Feedback_UnknownRequest_Is404AndNothingStored()
    {
        var response = await FeedbackAsync("""{"request_id":"req_nope","outcome":"success"}""");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("request_not_found", error["code"]!.GetValue<string>());
        Assert.Empty(await _host.Ledger.ReadFeedbackAsync().ToListAsync());
    }

    [Theory]
    [InlineData("""{"request_id":"X","score":1.5}""", "score")]
    [InlineData("""{"request_id":"X","score":"good"}""", "score")]
    [InlineData("""{"request_id":"X","outcome":"has space"}""", "outcome")]
    [InlineData("""{"request_id":"X"}""", "score")]
    [InlineData("""{"score":1}""", "request_id")]
    [InlineData("""not json""", null)]
    public async Task Feedback_Malformed_Is400NamingTheField(string body, string? param)
    {
        var id = await ChatAsync();

        var response = await FeedbackAsync(body.Replace("\"X\"", $"\"{id}\"", StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal(param, error["param"]?.GetValue<string>());
    }
}
