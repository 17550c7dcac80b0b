using System.ClientModel;
using System.Net.Http.Json;
using Marginal.Gateway.Embeddings;
using Marginal.Gateway.Routing;
using Marginal.Gateway.Routing.Learning;
using Marginal.Testing.Services;
using Microsoft.Extensions.DependencyInjection;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Cluster;

/// <summary>
/// Router feedback in cluster mode: gateways in this process sharing one real PostgreSQL (ledger, route examples) and
/// one real Redis (labels over pub/sub), each with a learned route whose one-neighbour kNN sends the France question to
/// the weak model. A label given on any node moves the decisions of every node.
/// </summary>
public sealed class ClusterRouteFeedbackTests : IAsyncLifetime
{
    private const string France = "What is the capital of France?";
    private const string Primes = "Prove that there are infinitely many primes of the form 4k+3.";

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
        var vectors = MiniLmEmbeddingGenerator.Shared.Embed([France, Primes]);
        RouterModelFile.Save(_routerFile, new KnnScorer(vectors, [0f, 1f], k: 1), new RouterModelFile.Header(0.5, "test"));
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
            routes:
              learned:
                strong: gpt-test
                weak: gpt-backup
                learned:
                  model: {_routerFile}
                  threshold: 0.4
            """));
        _hosts.Add(host);
        return host;
    }

    private static async Task<(string Route, string Model, string RequestId)> ChatAsync(GatewayHost node, string text)
    {
        var result = await node.OpenAI.GetChatClient("learned").CompleteChatAsync([new UserChatMessage(text)]);
        return (Header(result, "x-marginal-route"), Header(result, "x-marginal-model"), Header(result, "x-marginal-request-id"));
    }

    /// <summary>Where <paramref name="node"/> sends the France question now: the route reason and the model.</summary>
    private static async Task<(string Route, string Model)> DecisionAsync(GatewayHost node)
    {
        var (route, model, _) = await ChatAsync(node, France);
        return (route, model);
    }

    private static string Header<T>(ClientResult<T> result, string name) =>
        result.GetRawResponse().Headers.TryGetValue(name, out var value) ? value! : "";

    /// <summary>Waits (at most 10 s) until every one of <paramref name="nodes"/> holds a label for route <c>learned</c>.</summary>
    private static async Task<bool> LabelledAsync(params GatewayHost[] nodes)
    {
        for (var i = 0; i < 200; i++)
        {
            if (nodes.All(n => n.App.Services.GetRequiredService<RouteFeedback>().Count("learned") > 0))
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
