using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Gateway.Caching;
using Marginal.Testing.Services;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using static Marginal.Server.Tests.Cluster.LearnedRoute;

namespace Marginal.Server.Tests.Cluster;

/// <summary>
/// What a node missed while it was cut off from Redis, and feedback whose routing node is gone: gateways in this
/// process sharing one real PostgreSQL (ledger, feedback rows, route examples) and one real Redis of the test's own,
/// node B reaching it through a <see cref="TcpRelay"/> the test cuts and restores. Each node has the semantic cache on
/// for <c>gpt-solo</c> and a learned route whose one-neighbour kNN sends the France question to the weak model.
/// </summary>
public sealed class ClusterResyncTests : IAsyncLifetime
{
    private const string Asked = "How do I reset my password on the website?";
    private const string Paraphrase = "How can I reset my password on the website?";

    private readonly string _ledgerEnv = $"MARGINAL_TEST_LEDGER_{Guid.NewGuid():N}";
    private readonly string _prefix = $"t{Guid.NewGuid():N}";
    private readonly string _shared = Directory.CreateTempSubdirectory("marginal-resync-").FullName;
    private readonly List<GatewayHost> _hosts = [];
    private readonly List<string> _envs = [];
    private RedisServer _redis = null!;
    private TcpRelay _relay = null!;
    private string _routerFile = "";

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _relay = TcpRelay.Start(_redis.Endpoint);
        Environment.SetEnvironmentVariable(_ledgerEnv, await (await PostgresServer.Shared).CreateDatabaseAsync());
        _routerFile = Path.Combine(_shared, "router.json");
        LearnedRoute.SaveRouter(_routerFile);
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }
        await _relay.DisposeAsync();
        await _redis.DisposeAsync();
        foreach (var env in _envs)
        {
            Environment.SetEnvironmentVariable(env, null);
        }
        Environment.SetEnvironmentVariable(_ledgerEnv, null);
        Directory.Delete(_shared, recursive: true);
    }

    /// <summary>A node reaching Redis at <paramref name="redisEndpoint"/> (the server, or the relay).</summary>
    private async Task<GatewayHost> NodeAsync(string redisEndpoint)
    {
        var env = $"MARGINAL_TEST_REDIS_{Guid.NewGuid():N}";
        Environment.SetEnvironmentVariable(env, redisEndpoint);
        _envs.Add(env);
        var spool = Path.Combine(_shared, $"spool{_hosts.Count}");
        var host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, $"""
            storage:
              kind: postgres
              connection_string_env: {_ledgerEnv}
              spool: {spool}
            redis:
              connection_string_env: {env}
              key_prefix: {_prefix}
            cache:
              exact:
                enabled: false
              semantic: {"{"} enabled: true, threshold: 0.85, ttl: 1h {"}"}
              routes:
                gpt-solo: {"{"} semantic: true {"}"}
            {LearnedRoute.Yaml(_routerFile)}
            """));
        _hosts.Add(host);
        return host;
    }

    private static int Entries(GatewayHost node) =>
        node.App.Services.GetRequiredService<IChatClient>().GetService<ResponseCacheChatClient>()!.Semantic?.Count ?? 0;

    /// <summary>
    /// Waits until <paramref name="done"/>, at most 60 s: the Redis client reconnects with a growing back-off, and on a
    /// loaded CI run one reconnect and its catch-up took more than 30 s.
    /// </summary>
    private static async Task<bool> EventuallyAsync(Func<bool> done)
    {
        for (var i = 0; i < 600 && !done(); i++)
        {
            await Task.Delay(100);
        }
        return done();
    }

    /// <summary>Asks <paramref name="prompt"/> of <c>gpt-solo</c>: the cache outcome and the answer.</summary>
    private static async Task<(string Cache, string Answer)> AskAsync(GatewayHost node, string prompt)
    {
        var response = await node.Http.PostAsync("/v1/chat/completions", new StringContent(
            $$"""{"model":"gpt-solo","temperature":0,"messages":[{"role":"user","content":"{{prompt}}"}]}""", Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return (response.Headers.GetValues("x-marginal-cache").Single(), JsonNode.Parse(body)!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
    }

    private static int UpstreamChats(GatewayHost node) => node.Primary.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));

    [Fact]
    public async Task Semantic_EntryAddedWhileNodeBCutOff_ReachesNodeBOnReconnectAndHits()
    {
        var a = await NodeAsync(_redis.Endpoint);
        var b = await NodeAsync(_relay.Endpoint);

        _relay.Cut();
        var (_, answer) = await AskAsync(a, Asked);
        Assert.Equal(0, Entries(b));
        _relay.Restore();

        Assert.True(await EventuallyAsync(() => Entries(b) >= 1), "node B loaded the entry published while it was cut off");
        var (outcome, replayed) = await AskAsync(b, Paraphrase);
        Assert.Equal(("hit-semantic", answer), (outcome, replayed));
        Assert.Equal(0, UpstreamChats(b));
    }

    [Fact]
    public async Task Semantic_EntryHeardLiveThenNodeBReconnects_IndexedOnce()
    {
        var a = await NodeAsync(_redis.Endpoint);
        var b = await NodeAsync(_relay.Endpoint);
        await AskAsync(a, Asked);
        Assert.True(await EventuallyAsync(() => Entries(b) >= 1), "the entry reached node B live");

        _relay.Cut();
        await AskAsync(a, "What are the opening hours of the museum on Sundays?");
        _relay.Restore();

        Assert.True(await EventuallyAsync(() => Entries(b) >= 2), "node B loaded the entry it missed");
        await Task.Delay(500);
        Assert.Equal(2, Entries(b));
    }

    [Fact]
    public async Task Feedback_LabelPublishedWhileNodeBCutOff_NodeBLearnsItOnReconnect()
    {
        var a = await NodeAsync(_redis.Endpoint);
        var b = await NodeAsync(_relay.Endpoint);
        var (route, model, requestId) = await ChatAsync(a, France);
        Assert.Equal(("learned:0", "gpt-backup"), (route, model));

        _relay.Cut();
        (await a.Http.PostAsJsonAsync("/v1/feedback", new { request_id = requestId, score = 0.0 })).EnsureSuccessStatusCode();
        Assert.Equal((1, 0), (Labels(a), Labels(b)));
        _relay.Restore();

        Assert.True(await EventuallyAsync(() => Labels(b) >= 1), "node B read the label from the shared store on reconnect");
        // (0 + 1·1) / (1 + 1) = 0.5, above the threshold 0.4: the strong model; the label is held once.
        Assert.Equal(("learned:0.5", "gpt-test"), await DecisionAsync(b));
        Assert.Equal(1, Labels(b));
    }

    [Fact]
    public async Task Feedback_RoutingNodeRestartedBeforeFeedbackOnNodeB_BothNodesLearnIt()
    {
        var a = await NodeAsync(_redis.Endpoint);
        var b = await NodeAsync(_redis.Endpoint);
        var (_, model, requestId) = await ChatAsync(a, France);
        Assert.Equal("gpt-backup", model);

        // The embedding was only in node A's memory and in Redis; the restart drops the memory.
        await a.RestartAsync();
        (await b.Http.PostAsJsonAsync("/v1/feedback", new { request_id = requestId, score = 0.0 })).EnsureSuccessStatusCode();

        Assert.True(await EventuallyAsync(() => Labels(a) >= 1 && Labels(b) >= 1), "the label reached both nodes");
        Assert.Equal(("learned:0.5", "gpt-test"), await DecisionAsync(a));
        Assert.Equal(("learned:0.5", "gpt-test"), await DecisionAsync(b));
    }

    [Fact]
    public async Task Feedback_OnNodeBWhileRedisDown_LearnedByBothNodesOnceRedisIsBack()
    {
        var a = await NodeAsync(_redis.Endpoint);
        var b = await NodeAsync(_redis.Endpoint);
        var (_, model, requestId) = await ChatAsync(a, France);
        Assert.Equal("gpt-backup", model);

        // A Redis without persistence comes back empty: the embedding survives only in node A's memory.
        _redis.Stop();
        var feedback = await b.Http.PostAsJsonAsync("/v1/feedback", new { request_id = requestId, outcome = "failed" });
        feedback.EnsureSuccessStatusCode();
        Assert.Equal((0, 0), (Labels(a), Labels(b)));
        await _redis.StartAgainAsync();

        Assert.True(await EventuallyAsync(() => Labels(a) >= 1 && Labels(b) >= 1), "the label reached both nodes once Redis was back");
        Assert.Equal(("learned:0.5", "gpt-test"), await DecisionAsync(a));
        Assert.Equal(("learned:0.5", "gpt-test"), await DecisionAsync(b));
    }
}
