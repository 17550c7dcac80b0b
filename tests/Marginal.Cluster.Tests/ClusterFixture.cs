using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Marginal.Core.Ledger;
using Marginal.Gateway.Embeddings;
using Marginal.Gateway.Routing.Learning;
using Marginal.Storage.Postgres;
using Marginal.Testing;
using Marginal.Testing.Services;

namespace Marginal.Cluster.Tests;

/// <summary>
/// Three real <c>marginal serve</c> processes sharing one PostgreSQL (ledger, keys) and one Redis (counters, exact
/// cache, config changes), in front of one <see cref="FakeUpstream"/>. Every test uses keys of a tenant of its own,
/// so tests share the nodes without sharing budgets, cache entries or ledger rows. Model <c>gpt-semantic</c> has the
/// semantic cache on; route <c>learned</c> sends <see cref="EasyPrompt"/> to <c>gpt-weak</c> and <see cref="HardPrompt"/>
/// to <c>gpt-test</c> (a one-neighbour kNN router over the two, threshold 0.4).
/// </summary>
public class ClusterFixture : IAsyncLifetime
{
    private readonly bool _ownServices;
    private readonly int _nodeCount;
    private readonly string _extraYaml;

    public ClusterFixture()
        : this(ownServices: false, nodeCount: 3, extraYaml: "")
    {
    }

    /// <param name="ownServices">Start a PostgreSQL and a Redis of this fixture's own (so a test may stop and restart them).</param>
    /// <param name="nodeCount">How many nodes.</param>
    /// <param name="extraYaml">Top-level sections added to every node's config.</param>
    protected ClusterFixture(bool ownServices, int nodeCount, string extraYaml)
    {
        _ownServices = ownServices;
        _nodeCount = nodeCount;
        _extraYaml = extraYaml;
    }

    public const string AdminKey = "admin-secret-for-cluster-tests-0123456789";

    /// <summary>The monthly budget of tenant <c>budgeted</c> (USD).</summary>
    public const decimal Budget = 0.0005m;

    public const string EasyPrompt = "What is the capital of France?";

    public const string HardPrompt = "Prove that there are infinitely many primes of the form 4k+3.";

    private readonly string _dir = Directory.CreateTempSubdirectory("marginal-cluster-").FullName;

    public FakeUpstream Upstream { get; private set; } = null!;

    public IReadOnlyList<NodeProcess> Nodes { get; private set; } = [];

    /// <summary>The shared Redis (<c>host:port</c>) and the nodes' key prefix there.</summary>
    public string RedisEndpoint { get; private set; } = "";

    public string Prefix { get; } = $"c{Guid.NewGuid():N}";

    /// <summary>The PostgreSQL and Redis servers, when the fixture owns them.</summary>
    public PostgresServer? Postgres { get; private set; }

    public RedisServer? Redis { get; private set; }

    /// <summary>The shared ledger, read directly.</summary>
    public PostgresStore Ledger { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Upstream = await FakeUpstream.StartAsync(record: _ownServices);
        Postgres = _ownServices ? await PostgresServer.StartAsync() : null;
        Redis = _ownServices ? await RedisServer.StartAsync() : null;
        var ledger = await (Postgres ?? await PostgresServer.Shared).CreateDatabaseAsync();
        var redis = (Redis ?? await RedisServer.Shared).Endpoint;
        Ledger = await PostgresStore.OpenAsync(ledger);
        await File.WriteAllTextAsync(Path.Combine(_dir, "plans.yaml"), $"""
            tenants:
              budgeted:
                budget:
                  monthly_usd: {Budget}
            """);
        var environment = new Dictionary<string, string>
        {
            ["MARGINAL_CLUSTER_LEDGER"] = ledger,
            ["MARGINAL_CLUSTER_REDIS"] = redis,
            ["MARGINAL_CLUSTER_ADMIN"] = AdminKey,
        };
        RedisEndpoint = redis;
        var router = Path.Combine(_dir, "router.json");
        RouterModelFile.Save(router, new KnnScorer(MiniLmEmbeddingGenerator.Shared.Embed([EasyPrompt, HardPrompt]), [0f, 1f], k: 1), new RouterModelFile.Header(0.5, "cluster test"));
        var nodes = new List<NodeProcess>();
        for (var i = 0; i < _nodeCount; i++)
        {
            var folder = Directory.CreateDirectory(Path.Combine(_dir, $"node{i}")).FullName;
            var config = Path.Combine(folder, "marginal.yaml");
            await File.WriteAllTextAsync(config, $"""
                server:
                  auth: keys
                  admin_key_env: MARGINAL_CLUSTER_ADMIN
                storage:
                  kind: postgres
                  connection_string_env: MARGINAL_CLUSTER_LEDGER
                  spool: {Path.Combine(folder, "spool")}
                redis:
                  connection_string_env: MARGINAL_CLUSTER_REDIS
                  key_prefix: {Prefix}
                billing:
                  plans: ../plans.yaml
                cache:
                  semantic: {"{"} enabled: true, threshold: 0.85 {"}"}
                  routes:
                    gpt-semantic: {"{"} semantic: true {"}"}
                routes:
                  learned:
                    strong: gpt-test
                    weak: gpt-weak
                    learned:
                      model: {router}
                      threshold: 0.4
                providers:
                  up:
                    kind: openai
                    base_url: {Upstream.OpenAIBaseUrl}
                    timeout: 10s
                models:
                  gpt-test:
                    provider: up
                    upstream: up-model
                    price: deepseek-chat
                  gpt-weak:
                    provider: up
                    upstream: weak-model
                    price: deepseek-chat
                  gpt-semantic:
                    provider: up
                    upstream: up-model
                    price: deepseek-chat
                {_extraYaml}
                """);
            nodes.Add(new NodeProcess($"node{i}", config, environment));
        }
        Nodes = nodes;
        // One after another: the first creates the schema and seeds the counters; the rest find both done.
        foreach (var node in nodes)
        {
            await node.StartAsync();
        }
    }

    /// <summary>Issues a key of <paramref name="tenant"/> through node 0's admin API (stored in the shared PostgreSQL).</summary>
    public async Task<string> KeyAsync(string tenant) => (await IssueAsync(tenant)).Key;

    /// <summary>Issues a key of <paramref name="tenant"/>: its public id and the secret key.</summary>
    public async Task<(string Id, string Key)> IssueAsync(string tenant)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/v1/keys") { Content = JsonContent.Create(new { tenant }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        var response = await Nodes[0].Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        var created = JsonNode.Parse(body)!;
        return (created["id"]!.GetValue<string>(), created["key"]!.GetValue<string>());
    }

    /// <summary>The shared ledger's records of <paramref name="tenant"/>.</summary>
    public async Task<List<UsageRecord>> RecordsOfAsync(string tenant)
    {
        var records = new List<UsageRecord>();
        await foreach (var record in Ledger.ReadAsync())
        {
            if (record.Tenant == tenant)
            {
                records.Add(record);
            }
        }
        return records;
    }

    public async Task DisposeAsync()
    {
        foreach (var node in Nodes)
        {
            await node.DisposeAsync();
        }
        await Ledger.DisposeAsync();
        await Upstream.DisposeAsync();
        if (Postgres is not null)
        {
            await Postgres.DisposeAsync();
        }
        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }
}
