using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Core.Ledger;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// Every upstream call made for a client request ends in a ledger record, and an <c>Idempotency-Key</c> belongs to one
/// request body for good: what the replay store has forgotten (a restart, an eviction), the ledger still knows. The
/// replay store here holds at most two answers of 20,000 bytes, so other keys and long answers push answers out.
/// </summary>
public sealed class IdempotencyLedgerTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() =>
        _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s,
            "cache: { exact: { enabled: false } }\nidempotency: { max_entries: 2, max_bytes: 20000 }"));

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private int UpstreamCalls => _host.Primary.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal))
        + _host.Secondary.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));

    private static string Chat(string text, bool stream = false) =>
        new JsonObject
        {
            ["model"] = "gpt-test",
            ["stream"] = stream,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }),
        }.ToJsonString();

    private async Task<(HttpStatusCode Status, HttpResponseMessage Response)> PostAsync(string body, string idempotencyKey, string path = "/v1/chat/completions")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        var response = await _host.Http.SendAsync(request);
        // A stream is read to its end, so its record is written before the next step.
        await response.Content.ReadAsStringAsync();
        return (response.StatusCode, response);
    }

    private async Task<List<UsageRecord>> RecordsAsync()
    {
        var records = new List<UsageRecord>();
        await foreach (var record in _host.Ledger.ReadAsync())
        {
            records.Add(record);
        }
        return records;
    }

    private static async Task<string> CodeOf(HttpResponseMessage response) =>
        (string?)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["code"] ?? "";

    [Fact]
    public async Task Chat_KeyReusedWithAnotherBodyAfterRestart_Is422AndNothingGoesUpstream()
    {
        await PostAsync(Chat("the first question"), "order-9");
        await _host.RestartAsync();

        var (status, response) = await PostAsync(Chat("a different question"), "order-9");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Equal("idempotency_key_reuse", await CodeOf(response));
        Assert.Equal(1, UpstreamCalls);
        Assert.Single(await RecordsAsync());
    }

    [Fact]
    public async Task Chat_KeyReusedWithAnotherBodyAfterLargeAnswersEvictedIt_Is422()
    {
        await PostAsync(Chat("small first question"), "evicted");
        // Two long answers (the fake upstream echoes the prompt) fill the replay store's bytes.
        await PostAsync(Chat(new string('x', 6000)), "large-1");
        await PostAsync(Chat(new string('y', 6000)), "large-2");

        var (status, response) = await PostAsync(Chat("another body entirely"), "evicted");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Equal("idempotency_key_reuse", await CodeOf(response));
        Assert.Equal(3, UpstreamCalls);
    }

    [Fact]
    public async Task Chat_SameBodyAfterRestart_CallIsRecordedBesideTheKeyAndNotBilledAgain()
    {
        var (_, first) = await PostAsync(Chat("ask me again"), "again");
        await _host.RestartAsync();

        var (status, retry) = await PostAsync(Chat("ask me again"), "again");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, UpstreamCalls);
        Assert.False(first.Headers.Contains("x-marginal-duplicate"));
        Assert.Equal("true", retry.Headers.GetValues("x-marginal-duplicate").Single());
        var records = await RecordsAsync();
        var request = Assert.Single(records, r => r.Kind == UsageRecordKinds.Usage);
        var repeat = Assert.Single(records, r => r.Kind == UsageRecordKinds.Adjustment);
        Assert.Equal("default:again", request.Id);
        Assert.Equal(request.Id, repeat.Adjusts);
        Assert.Equal(1, repeat.Attempts);
        Assert.Equal(request.CostUsd, repeat.CostUsd);
        Assert.Null(repeat.RevenueUsd);
    }

    [Fact]
    public async Task Embeddings_KeyReusedWithAnotherInput_Is422AndARepeatIsRecorded()
    {
        const string first = """{"model":"embed-test","input":"alpha"}""";
        await PostAsync(first, "vectors", "/v1/embeddings");

        var (repeated, repeatResponse) = await PostAsync(first, "vectors", "/v1/embeddings");
        var (reused, reuseResponse) = await PostAsync("""{"model":"embed-test","input":"beta"}""", "vectors", "/v1/embeddings");

        Assert.Equal(HttpStatusCode.OK, repeated);
        Assert.Equal("true", repeatResponse.Headers.GetValues("x-marginal-duplicate").Single());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, reused);
        Assert.Equal("idempotency_key_reuse", await CodeOf(reuseResponse));
        var calls = _host.Primary.Requests.Count(r => r.Path.EndsWith("/embeddings", StringComparison.Ordinal));
        Assert.Equal(2, calls);
        Assert.Equal(calls, (await RecordsAsync()).Sum(r => r.Attempts));
    }

    /// <summary>
    /// Any seeded mix of new requests, retries, reuses with another body, streams, long answers (evictions) and
    /// restarts: the upstream calls made equal the upstream attempts the ledger records, and a reused key is refused.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task AnyMixOfRetriesReusesRestartsAndEvictions_EveryUpstreamCallIsRecorded(int seed)
    {
        var random = new Random(seed);
        var bodies = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var step = 0; step < 30; step++)
        {
            var roll = random.Next(100);
            if (roll < 8)
            {
                await _host.RestartAsync();
                continue;
            }
            if (bodies.Count == 0 || roll < 40)
            {
                var key = $"k{step}";
                var text = random.Next(4) == 0 ? new string((char)('a' + step % 26), 6000) : $"question {step}";
                var body = Chat(text, stream: random.Next(3) == 0);
                var (status, _) = await PostAsync(body, key);
                Assert.Equal(HttpStatusCode.OK, status);
                bodies[key] = body;
                continue;
            }
            var used = bodies.Keys.ElementAt(random.Next(bodies.Count));
            if (roll < 75)
            {
                var (status, _) = await PostAsync(bodies[used], used);
                Assert.Equal(HttpStatusCode.OK, status);
            }
            else
            {
                var (status, response) = await PostAsync(Chat($"reused at step {step}"), used);
                Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
                Assert.Equal("idempotency_key_reuse", await CodeOf(response));
            }
        }

        var records = await RecordsAsync();
        Assert.Equal(UpstreamCalls, records.Sum(r => r.Attempts));
        // Billed once per key: one usage record each, whatever was repeated.
        Assert.Equal(bodies.Count, records.Count(r => r.Kind == UsageRecordKinds.Usage));
    }
}
