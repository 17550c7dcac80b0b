using System.Net.Http.Json;
using Marginal.Testing.Services;
using static Marginal.Server.Tests.Cluster.LearnedRoute;

namespace Marginal.Server.Tests.Cluster;

/// <summary>
/// Router feedback in cluster mode: gateways in this process sharing one real PostgreSQL (ledger, route examples) and
/// one real Redis (labels over pub/sub), each with a learned route whose one-neighbour kNN sends the France question to
/// the weak model. A label given on any node moves the decisions of every node.
/// </summary>
public sealed class ClusterRouteFeedbackTests : IAsyncLifetime
{
    private readonly string _env = $"MARGINAL_TEST_REDIS_{Guid.NewGuid():N}";
    private readonly string _ledgerEnv = $"MARGINAL_TEST_LEDGER_{Guid.NewGuid():N}";
    private readonly string _prefix = $"t{Guid.NewGuid():N}";
    private readonly string _shared = Directory.CreateTempSubdirectory("marginal-cluster-").FullName;
    private readonly List<GatewayHost> _hosts = [];
    private string _routerFile = "";

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(_env, (await RedisServer.Shared).Endpoint);
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
        Environment.SetEnvironmentVariable(_env, null);
        Environment.SetEnvironmentVariable(_ledgerEnv, null);
        Directory.Delete(_shared, recursive: true);
    }

    private async Task<GatewayHost> NodeAsync()
    {
        var spool = Path.Combine(_shared, $"spool{_hosts.Count}");
        var host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, $"""
            storage:
              kind: postgres
              connection_string_env: {_ledgerEnv}
              spool: {spool}
            redis:
              connection_string_env: {_env}
              key_prefix: {_prefix}
            cache:
              exact:
                enabled: false
            {LearnedRoute.Yaml(_routerFile)}
            """));
        _hosts.Add(host);
        return host;
    }

    /// <summary>Waits (at most 10 s) until every one of <paramref name="nodes"/> holds a label for route <c>learned</c>.</summary>
    private static async Task<bool> LabelledAsync(params GatewayHost[] nodes)
    {
        for (var i = 0; i < 200; i++)
        {
            if (nodes.All(n => Labels(n) > 0))
            {
                return true;
            }
            await Task.Delay(50);
        }
        return false;
    }

    [Fact]
    public async Task Feedback_OnNodeBForRequestRoutedByNodeA_BothNodesSendThePromptToTheStrongModel()
    {
        var a = await NodeAsync();
        var b = await NodeAsync();
        var (route, model, requestId) = await ChatAsync(a, France);
        Assert.Equal(("learned:0", "gpt-backup"), (route, model));

        var feedback = await b.Http.PostAsJsonAsync("/v1/feedback", new { request_id = requestId, score = 0.0 });

        feedback.EnsureSuccessStatusCode();
        Assert.True(await LabelledAsync(a, b), "the label reached both nodes");
        // (0 + 1·1) / (1 + 1) = 0.5, above the threshold 0.4: the strong model, on either node.
        Assert.Equal(("learned:0.5", "gpt-test"), await DecisionAsync(a));
        Assert.Equal(("learned:0.5", "gpt-test"), await DecisionAsync(b));
    }

    [Fact]
    public async Task Feedback_OnNodeBForAnIdempotencyKeyWithSpaces_ReachesTheRoutingNode()
    {
        var a = await NodeAsync();
        var b = await NodeAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "learned", messages = new[] { new { role = "user", content = France } } }),
        };
        request.Headers.Add("Idempotency-Key", "order 42 attempt 1");
        using var answer = await a.Http.SendAsync(request);
        answer.EnsureSuccessStatusCode();
        var requestId = answer.Headers.GetValues("x-marginal-request-id").Single();
        Assert.Contains(" ", requestId, StringComparison.Ordinal);

        (await b.Http.PostAsJsonAsync("/v1/feedback", new { request_id = requestId, score = 0.0 })).EnsureSuccessStatusCode();

        Assert.True(await LabelledAsync(a, b), "the label reached both nodes");
    }

    [Fact]
    public async Task Feedback_OnTheRoutingNode_ReachesTheOtherNode()
    {
        var a = await NodeAsync();
        var b = await NodeAsync();
        var (_, _, requestId) = await ChatAsync(a, France);

        (await a.Http.PostAsJsonAsync("/v1/feedback", new { request_id = requestId, outcome = "failed" })).EnsureSuccessStatusCode();

        Assert.True(await LabelledAsync(b), "the label reached node B");
        Assert.Equal(("learned:0.5", "gpt-test"), await DecisionAsync(b));
    }

    [Fact]
    public async Task Feedback_OnNodeBThenNodeCStarts_NodeCRestoresTheLabelFromTheSharedStore()
    {
        var a = await NodeAsync();
        var b = await NodeAsync();
        var (_, _, requestId) = await ChatAsync(a, France);
        (await b.Http.PostAsJsonAsync("/v1/feedback", new { request_id = requestId, score = 0.1 })).EnsureSuccessStatusCode();
        Assert.True(await LabelledAsync(a, b), "the label reached both nodes");

        // Node A stored the example (its embedding) when it learned B's label; a node starting now joins it to B's feedback row.
        var c = await NodeAsync();

        Assert.Equal(("learned:0.5", "gpt-test"), await DecisionAsync(c));
    }

    [Fact]
    public async Task Feedback_GoodScoreOnNodeB_LeavesThePromptOnTheWeakModel()
    {
        var a = await NodeAsync();
        var b = await NodeAsync();
        var (_, _, requestId) = await ChatAsync(a, France);

        (await b.Http.PostAsJsonAsync("/v1/feedback", new { request_id = requestId, score = 1.0 })).EnsureSuccessStatusCode();

        Assert.True(await LabelledAsync(a, b), "the label reached both nodes");
        // (0 + 1·0) / (1 + 1) = 0: still the weak model.
        Assert.Equal(("learned:0", "gpt-backup"), await DecisionAsync(b));
    }
}
