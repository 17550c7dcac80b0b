using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Gateway.Caching;
using Marginal.Testing.Services;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Marginal.Server.Tests.Cluster;

/// <summary>
/// The semantic cache in cluster mode: gateways in this process sharing one real Redis (entries over pub/sub and a
/// sorted set, answers in the shared store) and one ledger file (keys), with the semantic cache on for <c>gpt-solo</c>.
/// Each node keeps its own index; an entry added through one is a semantic hit through the others, for its tenant only.
/// </summary>
public sealed class ClusterSemanticCacheTests : IAsyncLifetime
{
    private const string Asked = "How do I reset my password on the website?";
    private const string Paraphrase = "How can I reset my password on the website?";
    private const string AdminKey = "admin-secret-for-semantic-tests-0123456789";

    private readonly string _env = $"MARGINAL_TEST_REDIS_{Guid.NewGuid():N}";
    private readonly string _adminEnv = $"MARGINAL_TEST_ADMIN_{Guid.NewGuid():N}";
    private readonly string _prefix = $"t{Guid.NewGuid():N}";
    private readonly string _shared = Directory.CreateTempSubdirectory("marginal-cluster-").FullName;
    private readonly List<GatewayHost> _hosts = [];

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(_env, (await RedisServer.Shared).Endpoint);
        Environment.SetEnvironmentVariable(_adminEnv, AdminKey);
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }
        Environment.SetEnvironmentVariable(_env, null);
        Environment.SetEnvironmentVariable(_adminEnv, null);
        Directory.Delete(_shared, recursive: true);
    }

    private async Task<GatewayHost> NodeAsync(string ttl = "1h")
    {
        var host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, $"""
            storage:
              path: {Path.Combine(_shared, "ledger.db")}
            redis:
              connection_string_env: {_env}
              key_prefix: {_prefix}
            cache:
              semantic: {"{"} enabled: true, threshold: 0.85, ttl: {ttl} {"}"}
              routes:
                gpt-solo: {"{"} semantic: true {"}"}
            """).Replace("  auth: none", $"  auth: keys\n  admin_key_env: {_adminEnv}", StringComparison.Ordinal));
        _hosts.Add(host);
        return host;
    }

    private static async Task<string> KeyAsync(GatewayHost host, string tenant)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/v1/keys") { Content = JsonContent.Create(new { tenant }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        var response = await host.Http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["key"]!.GetValue<string>();
    }

    /// <summary>Asks <paramref name="prompt"/> through <paramref name="host"/>: the cache outcome and the answer.</summary>
    private static async Task<(string Cache, string Answer)> AskAsync(GatewayHost host, string key, string prompt)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($$"""{"model":"gpt-solo","temperature":0,"messages":[{"role":"user","content":"{{prompt}}"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var response = await host.Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return (response.Headers.GetValues("x-marginal-cache").Single(), JsonNode.Parse(body)!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
    }

    private static int Entries(GatewayHost host) =>
        host.App.Services.GetRequiredService<IChatClient>().GetService<ResponseCacheChatClient>()!.Semantic?.Count ?? 0;

    /// <summary>Waits (at most 10 s) until <paramref name="host"/>'s own index holds <paramref name="count"/> entries.</summary>
    private static async Task<bool> HoldsAsync(GatewayHost host, int count)
    {
        for (var i = 0; i < 200 && Entries(host) < count; i++)
        {
            await Task.Delay(50);
        }
        return Entries(host) >= count;
    }

    private static int UpstreamChats(GatewayHost host) => host.Primary.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));

    [Fact]
    public async Task Semantic_ParaphraseThroughNodeB_HitsTheAnswerStoredThroughNodeA()
    {
        var a = await NodeAsync();
        var b = await NodeAsync();
        var key = await KeyAsync(a, "acme");

        var (first, answer) = await AskAsync(a, key, Asked);
        Assert.True(await HoldsAsync(b, 1), "the entry reached node B");
        var (second, replayed) = await AskAsync(b, key, Paraphrase);

        Assert.Equal(("miss", "hit-semantic"), (first, second));
        Assert.Equal(answer, replayed);
        Assert.Equal((1, 0), (UpstreamChats(a), UpstreamChats(b)));
    }

    [Fact]
    public async Task Semantic_EntryOfTenantAOnNodeA_NotAHitForTenantBOnNodeB()
    {
        var a = await NodeAsync();
        var b = await NodeAsync();
        var acme = await KeyAsync(a, "acme");
        var globex = await KeyAsync(a, "globex");

        await AskAsync(a, acme, Asked);
        Assert.True(await HoldsAsync(b, 1), "the entry reached node B");
        var (other, _) = await AskAsync(b, globex, Paraphrase);
        var (own, _) = await AskAsync(b, acme, Paraphrase);

        Assert.Equal(("miss", "hit-semantic"), (other, own));
        Assert.Equal(1, UpstreamChats(b));
    }

    [Fact]
    public async Task Semantic_NodeCStartsAfterTheEntryWasAdded_LoadsItAndHits()
    {
        var a = await NodeAsync();
        var key = await KeyAsync(a, "acme");
        var (_, answer) = await AskAsync(a, key, Asked);

        var c = await NodeAsync();
        // Published before node C subscribed: it can only have come from the sorted set, loaded in the background.
        Assert.True(await HoldsAsync(c, 1), "node C loaded the entry");
        var (outcome, replayed) = await AskAsync(c, key, Paraphrase);

        Assert.Equal(("hit-semantic", answer), (outcome, replayed));
        Assert.Equal(0, UpstreamChats(c));
    }

    [Fact]
    public async Task Semantic_RedisStopped_AnswersAndHitsThisNodesOwnEntries()
    {
        await using var redis = await RedisServer.StartAsync();
        Environment.SetEnvironmentVariable(_env, redis.Endpoint);
        var a = await NodeAsync();
        var key = await KeyAsync(a, "acme");

        redis.Stop();
        var (first, answer) = await AskAsync(a, key, Asked);
        var (second, replayed) = await AskAsync(a, key, Paraphrase);

        // Sharing the entry failed quietly; the answer came, and this node's own index still holds the entry.
        Assert.Equal(("miss", "hit-semantic", answer), (first, second, replayed));
        Assert.Equal(1, UpstreamChats(a));
    }

    [Fact]
    public async Task Semantic_EntryExpiredBeforeNodeCStarts_NotLoadedAndAMiss()
    {
        var a = await NodeAsync(ttl: "1s");
        var key = await KeyAsync(a, "acme");
        await AskAsync(a, key, Asked);
        await Task.Delay(1500);

        var c = await NodeAsync(ttl: "1s");
        var (outcome, _) = await AskAsync(c, key, Paraphrase);

        Assert.Equal("miss", outcome);
        Assert.Equal(1, UpstreamChats(c));
    }
}
