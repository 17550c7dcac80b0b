using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Marginal.Core.Ledger;
using Marginal.Testing;
using StackExchange.Redis;

namespace Marginal.Cluster.Tests;

/// <summary>
/// The faults a cluster must ride through, on real processes: PostgreSQL stopped with virtual keys, Redis restarted
/// without its data, a node killed while it answers an idempotent request. Each test leaves the services and nodes
/// running for the next.
/// </summary>
public sealed class ClusterFaultTests(FaultClusterFixture cluster) : IClassFixture<FaultClusterFixture>
{
    private static HttpRequestMessage Chat(string key, string prompt, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($$"""{"model":"gpt-test","temperature":0,"max_tokens":20,"messages":[{"role":"user","content":"{{prompt}}"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        request.Headers.TryAddWithoutValidation("x-marginal-cache", "bypass");
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        return request;
    }

    [Fact]
    public async Task PostgresStopped_UnderLoadWithVirtualKeys_KnownKeysServedAndRecordedThroughTheSpool()
    {
        var key = await cluster.KeyAsync("outage");
        // Node 0 has used the key; node 1 knows it only from the key set it read when it started.
        Assert.Equal(HttpStatusCode.OK, (await cluster.Nodes[0].Http.SendAsync(Chat(key, "before the outage"))).StatusCode);
        cluster.Nodes[1].Kill();
        await cluster.Nodes[1].StartAsync();
        var statuses = new ConcurrentBag<HttpStatusCode>();
        var acknowledged = new ConcurrentBag<string>();
        var done = 0;
        Task? stopping = null;

        // 160 requests, 4 at a time over both nodes; PostgreSQL is stopped once 40 have finished.
        await Parallel.ForEachAsync(Enumerable.Range(0, 160), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, ct) =>
        {
            using var response = await cluster.Nodes[i % 2].Http.SendAsync(Chat(key, $"outage {i}"), ct);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                await response.Content.ReadAsStringAsync(ct);
                acknowledged.Add(response.Headers.GetValues("x-marginal-request-id").Single());
            }
            if (Interlocked.Increment(ref done) == 40)
            {
                stopping = cluster.Postgres!.StopAsync();
            }
        });
        await stopping!;
        // After the load: PostgreSQL is down for every request here.
        foreach (var node in cluster.Nodes)
        {
            using var response = await node.Http.SendAsync(Chat(key, "during the outage"));
            statuses.Add(response.StatusCode);
            acknowledged.Add(response.Headers.GetValues("x-marginal-request-id").Single());
        }
        using var unknown = await cluster.Nodes[1].Http.SendAsync(Chat("mk-neverissued0-secretsecretsecretsecret", "who am I"));
        var unknownBody = await unknown.Content.ReadAsStringAsync();

        // Node 1 stops with records in its spool; it replays them when it starts again.
        cluster.Nodes[1].Kill();
        await cluster.Postgres!.StartAgainAsync();
        await cluster.Nodes[1].StartAsync();
        var records = await RecordsWhenAsync("outage", r => r.Count >= acknowledged.Count + 1);

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, unknown.StatusCode);
        Assert.Contains("keys_unavailable", unknownBody, StringComparison.Ordinal);
        Assert.NotNull(unknown.Headers.RetryAfter);
        var ids = records.Select(r => r.Id).ToHashSet();
        Assert.DoesNotContain(acknowledged, id => !ids.Contains(id));
        Assert.Equal(records.Count, ids.Count);
        Assert.Contains("spooled records", cluster.Nodes[1].Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RedisRestartedEmpty_BudgetSeededAgainFromTheLedgerOnce_NodeRestartAddsNothing()
    {
        var key = await cluster.KeyAsync("budgeted");
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await cluster.Nodes[i % 2].Http.SendAsync(Chat(key, $"before the restart {i}"))).StatusCode);
        }

        cluster.Redis!.Stop();
        await cluster.Redis.StartAgainAsync();
        // The nodes reconnect by themselves, each on its own backoff; until then a budgeted request is refused (503),
        // which is not spend.
        for (var node = 0; node < 2; node++)
        {
            var status = HttpStatusCode.ServiceUnavailable;
            for (var i = 0; i < 600 && status == HttpStatusCode.ServiceUnavailable; i++)
            {
                status = (await cluster.Nodes[node].Http.SendAsync(Chat(key, $"after the restart, node {node}, try {i}"))).StatusCode;
                await Task.Delay(status == HttpStatusCode.ServiceUnavailable ? 100 : 0);
            }
            Assert.Equal(HttpStatusCode.OK, status);
        }
        // A node started now finds the counters seeded and must not add the ledger's total again.
        cluster.Nodes[0].Kill();
        await cluster.Nodes[0].StartAsync();
        var counted = await MonthCounterAsync("budgeted");
        var recorded = (await cluster.RecordsOfAsync("budgeted")).Sum(r => r.CostUsd ?? 0m);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 300 && !statuses.Contains(HttpStatusCode.PaymentRequired); i++)
        {
            statuses.Add((await cluster.Nodes[i % 2].Http.SendAsync(Chat(key, $"until the budget is spent {i}"))).StatusCode);
        }
        var spent = (await cluster.RecordsOfAsync("budgeted")).Sum(r => r.CostUsd ?? 0m);

        Assert.InRange(counted, recorded - 0.00000001m, recorded + 0.00000001m);
        Assert.Contains(HttpStatusCode.PaymentRequired, statuses);
        Assert.True(spent <= ClusterFixture.Budget, $"recorded {spent} USD passed the budget of {ClusterFixture.Budget} USD across a Redis restart");
    }

    [Fact]
    public async Task NodeDiesMidRequest_RetryOnAnotherNodeToldWhenToComeBack_ServedOnceTheMarkerLapses()
    {
        var key = await cluster.KeyAsync("idempotent");
        var idempotencyKey = $"order-{Guid.NewGuid():N}";
        var before = cluster.Upstream.Requests.Count;
        cluster.Upstream.Enqueue(new Fault(FaultKind.Delay, Delay: TimeSpan.FromMinutes(2)));
        var first = cluster.Nodes[1].Http.SendAsync(Chat(key, "charge me once", ("Idempotency-Key", idempotencyKey)));
        for (var i = 0; i < 300 && cluster.Upstream.Requests.Count == before; i++)
        {
            await Task.Delay(50);
        }
        HttpResponseMessage? refused = null;
        HttpResponseMessage? renewed = null;
        var answered = new List<HttpStatusCode>();
        try
        {
            refused = await cluster.Nodes[0].Http.SendAsync(Chat(key, "charge me once", ("Idempotency-Key", idempotencyKey)));
            // Longer than the marker's 3 s: node 1 renews it while it waits for the upstream.
            await Task.Delay(TimeSpan.FromSeconds(4));
            renewed = await cluster.Nodes[0].Http.SendAsync(Chat(key, "charge me once", ("Idempotency-Key", idempotencyKey)));
            cluster.Nodes[1].Kill();
            // Retry as a client that honours Retry-After would, at most 20 times.
            for (var i = 0; i < 20 && !answered.Contains(HttpStatusCode.OK); i++)
            {
                using var retry = await cluster.Nodes[0].Http.SendAsync(Chat(key, "charge me once", ("Idempotency-Key", idempotencyKey)));
                answered.Add(retry.StatusCode);
                if (retry.StatusCode == HttpStatusCode.Conflict)
                {
                    await Task.Delay(retry.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(30));
                }
            }
        }
        finally
        {
            cluster.Nodes[1].Kill();
            await Assert.ThrowsAnyAsync<Exception>(() => first);
            await cluster.Nodes[1].StartAsync();
        }

        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        var wait = refused.Headers.RetryAfter?.Delta;
        Assert.NotNull(wait);
        Assert.InRange(wait.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3));
        Assert.Equal(HttpStatusCode.Conflict, renewed!.StatusCode);
        Assert.Equal(HttpStatusCode.OK, answered[^1]);
        Assert.Single(await cluster.RecordsOfAsync("idempotent"));
    }

    /// <summary>The ledger's records of <paramref name="tenant"/> once <paramref name="done"/> holds (at most 60 s: the spool replays every second).</summary>
    private async Task<List<UsageRecord>> RecordsWhenAsync(string tenant, Func<List<UsageRecord>, bool> done)
    {
        var records = new List<UsageRecord>();
        for (var i = 0; i < 120; i++)
        {
            try
            {
                records = await cluster.RecordsOfAsync(tenant);
                if (done(records))
                {
                    break;
                }
            }
            catch (Npgsql.NpgsqlException)
            {
                // A pooled connection from before the restart.
            }
            await Task.Delay(500);
        }
        return records;
    }

    /// <summary>The tenant's monthly USD counter in Redis, as the nodes hold it.</summary>
    private async Task<decimal> MonthCounterAsync(string tenant)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(cluster.RedisEndpoint);
        var value = await redis.GetDatabase().StringGetAsync($"{cluster.Prefix}:limit:usd:t:{tenant}:m:{DateTimeOffset.UtcNow:yyyyMM}");
        return value.IsNull ? 0m : (long)value / 1_000_000_000m;
    }
}
