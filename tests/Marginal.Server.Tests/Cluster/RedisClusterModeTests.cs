using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Marginal.Testing.Services;
using Microsoft.Extensions.Logging;

namespace Marginal.Server.Tests.Cluster;

/// <summary>
/// Two gateways in this process sharing one real redis-server (<c>redis:</c> in marginal.yaml), as two nodes of a
/// cluster: the exact cache, budgets and key revocations cross from one to the other; Redis stopped mid-test shows the
/// documented modes. Each test has a Redis of its own (so it may stop it) and a key prefix of its own.
/// </summary>
public sealed partial class RedisClusterModeTests : IAsyncLifetime
{
    private const string AdminVariable = "MARGINAL_TEST_CLUSTER_ADMIN";
    private const string AdminKey = "admin-secret-for-cluster-tests-0123456789";
    private readonly string _env = $"MARGINAL_TEST_REDIS_{Guid.NewGuid():N}";
    private readonly string _prefix = $"t{Guid.NewGuid():N}";
    private readonly string _shared = Directory.CreateTempSubdirectory("marginal-cluster-").FullName;
    private readonly List<GatewayHost> _hosts = [];
    private RedisServer _redis = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        Environment.SetEnvironmentVariable(_env, _redis.Endpoint);
        Environment.SetEnvironmentVariable(AdminVariable, AdminKey);
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            await host.DisposeAsync();
        }
        await _redis.DisposeAsync();
        Environment.SetEnvironmentVariable(_env, null);
        Directory.Delete(_shared, recursive: true);
    }

    private async Task<GatewayHost> NodeAsync(string extra = "", string failMode = "closed", bool withKeys = false, bool watch = false)
    {
        var host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, $"""
            redis:
              connection_string_env: {_env}
              key_prefix: {_prefix}
              budgets_fail: {failMode}
            {extra}
            """).Replace("  auth: none", withKeys ? $"  auth: keys\n  admin_key_env: {AdminVariable}" : "  auth: none", StringComparison.Ordinal), watch);
        _hosts.Add(host);
        return host;
    }

    private async Task<string> PlansAsync(string plansYaml)
    {
        var path = Path.Combine(_shared, "plans.yaml");
        await File.WriteAllTextAsync(path, plansYaml);
        return $"billing:\n  plans: {path}";
    }

    private static Task<HttpResponseMessage> PostAsync(GatewayHost host, string prompt, bool stream = false, int maxTokens = 20, string? bearer = null)
    {
        var body = $$"""{"model":"gpt-test","temperature":0,"max_tokens":{{maxTokens}},"stream":{{(stream ? "true" : "false")}},"stream_options":{{(stream ? """{"include_usage":true}""" : "null")}},"messages":[{"role":"user","content":"{{prompt}}"}]}""";
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        return host.Http.SendAsync(request);
    }

    private static string CacheHeader(HttpResponseMessage response) => response.Headers.GetValues("x-marginal-cache").Single();

    private static int UpstreamChats(GatewayHost host) => host.Primary.Requests.Count(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));

    private static async Task<JsonNode> ErrorOf(HttpResponseMessage response) => JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;

    [Fact]
    public async Task Stream_AnsweredThroughNodeA_ReplayedByNodeBWithSameEvents()
    {
        var a = await NodeAsync();
        var b = await NodeAsync();

        var first = await PostAsync(a, "stream this across nodes", stream: true);
        var firstEvents = await SseEvents.ReadAsync(first);
        var second = await PostAsync(b, "stream this across nodes", stream: true);
        var secondEvents = await SseEvents.ReadAsync(second);

        Assert.Equal(("miss", "hit-exact"), (CacheHeader(first), CacheHeader(second)));
        Assert.Equal((1, 0), (UpstreamChats(a), UpstreamChats(b)));
        Assert.True(firstEvents.Count > 3);
        Assert.Equal(firstEvents.Select(Normalise), secondEvents.Select(Normalise));
        var hit = (await b.Ledger.FindAsync(second.Headers.GetValues("x-marginal-request-id").Single()))!;
        Assert.Equal((0m, "hit-exact"), (hit.CostUsd, hit.CacheOutcome));
    }

    [Fact]
    public async Task IdempotentRetry_OnNodeB_ReplaysNodeAsAnswerWithoutCallingUpstream()
    {
        var a = await NodeAsync("cache:\n  exact:\n    enabled: false");
        var b = await NodeAsync("cache:\n  exact:\n    enabled: false");
        async Task<HttpResponseMessage> SendAsync(GatewayHost node)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = new StringContent("""{"model":"gpt-test","temperature":0.7,"messages":[{"role":"user","content":"retry me"}]}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("Idempotency-Key", "cross-node-1");
            return await node.Http.SendAsync(request);
        }

        using var first = await SendAsync(a);
        using var retry = await SendAsync(b);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        Assert.Equal("true", retry.Headers.GetValues("x-marginal-idempotent-replay").Single());
        Assert.Equal(
            JsonNode.Parse(await first.Content.ReadAsStringAsync())!["choices"]![0]!["message"]!["content"]!.GetValue<string>(),
            JsonNode.Parse(await retry.Content.ReadAsStringAsync())!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal(1, UpstreamChats(a) + UpstreamChats(b));
    }

    [Fact]
    public async Task Budget_ConcurrentRequestsSpreadOverTwoNodes_RecordedCostNeverExceedsIt()
    {
        const decimal Budget = 0.002m;
        var plans = await PlansAsync($"tenants:\n  default:\n    budget:\n      monthly_usd: {Budget}\n");
        var a = await NodeAsync(plans);
        var b = await NodeAsync(plans);

        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => PostAsync(i % 2 == 0 ? a : b, $"hello world {i}")));

        var records = (await a.Ledger.ReadAsync().ToListAsync()).Concat(await b.Ledger.ReadAsync().ToListAsync()).ToList();
        var spent = records.Sum(r => r.CostUsd ?? 0);
        Assert.True(spent <= Budget, $"recorded cost {spent} passed the budget {Budget} across two nodes");
        Assert.Equal(responses.Count(r => r.StatusCode == HttpStatusCode.OK), records.Count);
        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.PaymentRequired);
        // Not a split either: with counters of their own, each node would spend about the whole budget (100 requests
        // of about 0.00008 USD each), together about twice it.
    }

    [Fact]
    public async Task Budget_RedisStoppedFailClosed_Refused503NamingTheCause()
    {
        var a = await NodeAsync(await PlansAsync("tenants:\n  default:\n    budget:\n      monthly_usd: 10\n"));
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(a, "before the outage")).StatusCode);

        _redis.Stop();
        var during = await PostAsync(a, "during the outage");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, during.StatusCode);
        var error = await ErrorOf(during);
        Assert.Equal("limits_unavailable", error["code"]!.GetValue<string>());
        Assert.Contains("Redis", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(1, UpstreamChats(a));
    }

    [Fact]
    public async Task Budget_RedisStoppedFailOpen_AdmittedAndRecorded()
    {
        var a = await NodeAsync(await PlansAsync("tenants:\n  default:\n    budget:\n      monthly_usd: 10\n"), failMode: "open");

        _redis.Stop();
        var during = await PostAsync(a, "during the outage");

        Assert.Equal(HttpStatusCode.OK, during.StatusCode);
        Assert.Equal(1, await a.Ledger.CountAsync());
    }

    [Fact]
    public async Task Cache_RedisStoppedMidTraffic_MissesQuietlyAndLogsOnce()
    {
        var a = await NodeAsync();
        Assert.Equal("miss", CacheHeader(await PostAsync(a, "cached before")));
        Assert.Equal("hit-exact", CacheHeader(await PostAsync(a, "cached before")));

        _redis.Stop();
        var during = new List<HttpResponseMessage>();
        for (var i = 0; i < 5; i++)
        {
            during.Add(await PostAsync(a, "cached before"));
        }

        Assert.All(during, r => Assert.Equal((HttpStatusCode.OK, "miss"), (r.StatusCode, CacheHeader(r))));
        Assert.Equal(6, UpstreamChats(a));
        Assert.Single(a.Logs.Entries, e => e.Level >= LogLevel.Error && e.Message.Contains("Redis unreachable", StringComparison.Ordinal));

        await _redis.StartAgainAsync();
        HttpResponseMessage? after = null;
        for (var i = 0; i < 100 && (after is null || CacheHeader(after) != "hit-exact"); i++)
        {
            await Task.Delay(100);
            after = await PostAsync(a, "cached after");
        }
        Assert.Equal("hit-exact", CacheHeader(after!));
    }

    [Fact]
    public async Task Revoke_ThroughNodeA_RefusedByNodeBAtOnce()
    {
        var keys = $"""
            storage:
              path: {Path.Combine(_shared, "ledger.db")}
            """;
        var a = await NodeAsync(keys, withKeys: true);
        var b = await NodeAsync(keys, withKeys: true);
        var created = await AdminAsync(a, HttpMethod.Post, "/admin/v1/keys", new { tenant = "acme" });
        var key = created["key"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(b, "before revoking", bearer: key)).StatusCode);

        await AdminAsync(a, HttpMethod.Delete, $"/admin/v1/keys/{created["id"]}", null);
        HttpResponseMessage? refused = null;
        // Pub/sub delivery is asynchronous but immediate: well under the key cache's 5 s.
        for (var i = 0; i < 20 && refused?.StatusCode != HttpStatusCode.Unauthorized; i++)
        {
            refused = await PostAsync(b, "after revoking", bearer: key);
            await Task.Delay(50);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, refused!.StatusCode);
        Assert.Contains("revoked", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConfigReload_OnNodeA_NodeBReloadsItsOwnFile()
    {
        var a = await NodeAsync(watch: true);
        var b = await NodeAsync(watch: true);
        // B's file becomes a link to a file in a folder B does not watch, so B can only learn of a change from A.
        var target = Path.Combine(_shared, "node-b.yaml");
        File.Copy(b.ConfigPath, target);
        File.Delete(b.ConfigPath);
        File.CreateSymbolicLink(b.ConfigPath, target);
        await Task.Delay(1000);
        const string ExtraModel = "\n  gpt-extra:\n    provider: primary\n    upstream: extra-model\n";
        await File.AppendAllTextAsync(target, ExtraModel);
        await Task.Delay(1000);
        Assert.DoesNotContain("gpt-extra", await b.Http.GetStringAsync("/v1/models"), StringComparison.Ordinal);

        await File.AppendAllTextAsync(a.ConfigPath, ExtraModel);
        var models = "";
        for (var i = 0; i < 100 && !models.Contains("gpt-extra", StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
            models = await b.Http.GetStringAsync("/v1/models");
        }

        Assert.Contains("gpt-extra", await a.Http.GetStringAsync("/v1/models"), StringComparison.Ordinal);
        Assert.Contains("gpt-extra", models, StringComparison.Ordinal);
    }

    private static async Task<JsonNode> AdminAsync(GatewayHost host, HttpMethod method, string path, object? body)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        var response = await host.Http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    private static string Normalise(string sseEvent) => Volatile().Replace(sseEvent, "");

    [GeneratedRegex(@"""(id|created)"":(""[^""]*""|\d+),?")]
    private static partial Regex Volatile();
}
