using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using OpenAI;
using OpenAI.Chat;
using StackExchange.Redis;

namespace Marginal.Cluster.Tests;

/// <summary>
/// The cluster as clients see it: requests spread over three node processes (round robin, a fixed count each, so
/// runs are comparable), through the official OpenAI SDK or plain HTTP where a header must be set by hand.
/// </summary>
public sealed class ClusterTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>
{
    private ChatClient Sdk(int node, string key) => new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions
    {
        Endpoint = new Uri(cluster.Nodes[node].BaseUrl, "/v1"),
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
    }).GetChatClient("gpt-test");

    private static HttpRequestMessage Chat(string key, string prompt, params (string Name, string Value)[] headers) => ChatTo("gpt-test", key, prompt, headers);

    private static HttpRequestMessage ChatTo(string model, string key, string prompt, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($$"""{"model":"{{model}}","temperature":0,"max_tokens":20,"messages":[{"role":"user","content":"{{prompt}}"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        return request;
    }

    private static string Header(HttpResponseMessage response, string name) => response.Headers.GetValues(name).Single();

    [Fact]
    public async Task Budget_150RequestsOverThreeNodes_SpendNeverPassesTheLimit()
    {
        var key = await cluster.KeyAsync("budgeted");
        var clients = Enumerable.Range(0, 3).Select(n => Sdk(n, key)).ToArray();
        var statuses = new ConcurrentBag<int>();

        // 15 at a time, five per node, 150 in all.
        await Parallel.ForEachAsync(Enumerable.Range(0, 150), new ParallelOptions { MaxDegreeOfParallelism = 15 }, async (i, ct) =>
        {
            try
            {
                var result = await clients[i % 3].CompleteChatAsync([new UserChatMessage($"budgeted request {i}")],
                    new ChatCompletionOptions { MaxOutputTokenCount = 20, Temperature = 0 }, ct);
                statuses.Add(result.GetRawResponse().Status);
            }
            catch (ClientResultException error)
            {
                statuses.Add(error.Status);
            }
        });

        var records = await cluster.RecordsOfAsync("budgeted");
        var spent = records.Sum(r => r.CostUsd ?? 0m);
        Assert.True(spent <= ClusterFixture.Budget, $"recorded cost {spent} USD passed the shared budget of {ClusterFixture.Budget} USD");
        Assert.Equal(statuses.Count(s => s == 200), records.Count);
        Assert.Contains(402, statuses);
        Assert.True(statuses.Count(s => s == 200) >= 3, "the budget admits more than a handful before it is spent");
        Assert.All(statuses, s => Assert.True(s is 200 or 402, $"status {s}"));
    }

    [Fact]
    public async Task Cache_AnswerStoredThroughNodeA_HitThroughNodeB()
    {
        var key = await cluster.KeyAsync("cached");

        var first = await cluster.Nodes[0].Http.SendAsync(Chat(key, "one answer for every node"));
        var second = await cluster.Nodes[1].Http.SendAsync(Chat(key, "one answer for every node"));
        var third = await cluster.Nodes[2].Http.SendAsync(Chat(key, "one answer for every node"));

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK), (first.StatusCode, second.StatusCode, third.StatusCode));
        Assert.Equal(("miss", "hit-exact", "hit-exact"), (Header(first, "x-marginal-cache"), Header(second, "x-marginal-cache"), Header(third, "x-marginal-cache")));
        Assert.Equal(await first.Content.ReadAsStringAsync().ContinueWith(t => Answer(t.Result)), Answer(await second.Content.ReadAsStringAsync()));
        var records = await cluster.RecordsOfAsync("cached");
        Assert.Equal(["hit-exact", "hit-exact", "miss"], records.Select(r => r.CacheOutcome).Order());
    }

    [Fact]
    public async Task Retry_SameIdempotencyKeyOnAnotherNode_BilledOnce()
    {
        var key = await cluster.KeyAsync("retrying");
        var idempotencyKey = $"order-{Guid.NewGuid():N}";

        var first = await cluster.Nodes[0].Http.SendAsync(Chat(key, "charge me once", ("Idempotency-Key", idempotencyKey), ("x-marginal-cache", "bypass")));
        var retry = await cluster.Nodes[2].Http.SendAsync(Chat(key, "charge me once", ("Idempotency-Key", idempotencyKey), ("x-marginal-cache", "bypass")));

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK), (first.StatusCode, retry.StatusCode));
        Assert.Equal(Header(first, "x-marginal-request-id"), Header(retry, "x-marginal-request-id"));
        // The retry on node 2 is answered from the first answer that node 0 left in Redis, not by the upstream again.
        Assert.Equal("true", Header(retry, "x-marginal-idempotent-replay"));
        var records = await cluster.RecordsOfAsync("retrying");
        var record = Assert.Single(records);
        Assert.Equal($"retrying:{idempotencyKey}", record.Id);
        Assert.True(record.CostUsd > 0);
    }

    [Fact]
    public async Task Revoke_FromTheCli_RefusedByEveryNodeAtOnce()
    {
        var (id, key) = await cluster.IssueAsync("revoked");
        foreach (var node in cluster.Nodes)
        {
            // Each node now holds the key in its 5 s key cache.
            Assert.Equal(HttpStatusCode.OK, (await node.Http.SendAsync(Chat(key, "before revoking"))).StatusCode);
        }

        await using var redis = await ConnectionMultiplexer.ConnectAsync(cluster.RedisEndpoint);
        var heard = new ConcurrentQueue<string>();
        await redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal($"{cluster.Prefix}:config"), (_, message) => heard.Enqueue(message.ToString()));

        var (exitCode, output) = await cluster.Nodes[0].RunCliAsync("keys", "revoke", id);
        var statuses = new List<HttpStatusCode>();
        foreach (var node in cluster.Nodes)
        {
            statuses.Add((await node.Http.SendAsync(Chat(key, "after revoking"))).StatusCode);
        }

        Assert.True(exitCode == 0, output);
        Assert.DoesNotContain("warning", output, StringComparison.Ordinal);
        // What the nodes act on (RedisClusterModeTests shows a node forgetting the key on this message).
        Assert.Contains(heard, m => m.StartsWith("key cli-", StringComparison.Ordinal) && m.EndsWith($" {id}", StringComparison.Ordinal));
        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized], statuses);
    }

    [Fact]
    public async Task Load_NodeKilledMidLoad_EveryAcknowledgedAnswerInTheLedgerOnce()
    {
        var key = await cluster.KeyAsync("loaded");
        var acknowledged = new ConcurrentBag<string>();
        var failed = 0;
        var done = 0;
        var victim = cluster.Nodes[2];

        try
        {
            // 300 requests, 12 at a time, round robin; node 2 is SIGKILLed once 100 have finished.
            var load = Parallel.ForEachAsync(Enumerable.Range(0, 300), new ParallelOptions { MaxDegreeOfParallelism = 12 }, async (i, ct) =>
            {
                try
                {
                    using var response = await cluster.Nodes[i % 3].Http.SendAsync(Chat(key, $"load {i}", ("x-marginal-cache", "bypass")), ct);
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        // Acknowledged only once the whole body arrived.
                        await response.Content.ReadAsStringAsync(ct);
                        acknowledged.Add(Header(response, "x-marginal-request-id"));
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref failed);
                }
                if (Interlocked.Increment(ref done) == 100)
                {
                    victim.Kill();
                }
            });
            await load;
        }
        finally
        {
            victim.Kill();
            await victim.StartAsync();
        }

        var records = await cluster.RecordsOfAsync("loaded");
        var ids = records.Select(r => r.Id).ToHashSet();
        Assert.True(failed > 0, "the kill hit requests in flight or sent to the dead node");
        Assert.True(acknowledged.Count >= 200, $"{acknowledged.Count} answers: nodes 0 and 1 kept serving");
        Assert.DoesNotContain(acknowledged, id => !ids.Contains(id));
        Assert.Equal(records.Count, ids.Count);
        // A request cut off after its record was written may be in the ledger unanswered; never more than those in flight.
        Assert.InRange(records.Count - acknowledged.Count, 0, 12);
    }

    [Fact]
    public async Task SemanticCache_ParaphraseThroughNodeB_HitsNodeAsAnswerForItsTenantOnly()
    {
        var owner = await cluster.KeyAsync("semantic-owner");
        var other = await cluster.KeyAsync("semantic-other");
        await using var heard = await HeardAsync("semantic");

        var first = await cluster.Nodes[0].Http.SendAsync(ChatTo("gpt-semantic", owner, "How do I reset my password on the website?"));
        Assert.True(await heard.WaitAsync(), "node 0 published its semantic entry");
        var otherTenant = await cluster.Nodes[1].Http.SendAsync(ChatTo("gpt-semantic", other, "How can I reset my password on the website?"));
        var paraphrase = await cluster.Nodes[2].Http.SendAsync(ChatTo("gpt-semantic", owner, "How can I reset my password on the website?"));

        Assert.Equal(("miss", "miss", "hit-semantic"), (Header(first, "x-marginal-cache"), Header(otherTenant, "x-marginal-cache"), Header(paraphrase, "x-marginal-cache")));
        Assert.Equal(Answer(await first.Content.ReadAsStringAsync()), Answer(await paraphrase.Content.ReadAsStringAsync()));
        var records = await cluster.RecordsOfAsync("semantic-owner");
        Assert.Equal(["hit-semantic", "miss"], records.Select(r => r.CacheOutcome).Order());
        Assert.Contains(records, r => r.CacheOutcome == "hit-semantic" && r.CostUsd == 0m && r.CacheSimilarity >= 0.85);
    }

    [Fact]
    public async Task RouterFeedback_PostedToNodeB_MovesTheDecisionOnEveryNode()
    {
        var key = await cluster.KeyAsync("learning");
        var bypass = ("x-marginal-cache", "bypass");
        var first = await cluster.Nodes[0].Http.SendAsync(ChatTo("learned", key, ClusterFixture.EasyPrompt, bypass));
        Assert.Equal(("learned:0", "gpt-weak"), (Header(first, "x-marginal-route"), Header(first, "x-marginal-model")));
        await using var heard = await HeardAsync("route-feedback");

        using var feedback = new HttpRequestMessage(HttpMethod.Post, "/v1/feedback")
        {
            Content = JsonContent.Create(new { request_id = Header(first, "x-marginal-request-id"), score = 0.0 }),
        };
        feedback.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var stored = await cluster.Nodes[1].Http.SendAsync(feedback);
        Assert.True(stored.IsSuccessStatusCode, await stored.Content.ReadAsStringAsync());
        // Node 1 asks; node 0, which holds the prompt's embedding, answers with the label for every node.
        Assert.True(await heard.WaitAsync(m => m.StartsWith("label ", StringComparison.Ordinal)), "node 0 published the label");

        var decisions = new List<(string, string)>();
        foreach (var node in cluster.Nodes)
        {
            var response = await node.Http.SendAsync(ChatTo("learned", key, ClusterFixture.EasyPrompt, bypass));
            decisions.Add((Header(response, "x-marginal-route"), Header(response, "x-marginal-model")));
        }

        // (0 + 1·1) / (1 + 1) = 0.5, above the threshold 0.4.
        Assert.All(decisions, d => Assert.Equal(("learned:0.5", "gpt-test"), d));
    }

    /// <summary>Listens on the nodes' Redis channel <paramref name="channel"/>, as every node does.</summary>
    private async Task<ChannelListener> HeardAsync(string channel)
    {
        var redis = await ConnectionMultiplexer.ConnectAsync(cluster.RedisEndpoint);
        var listener = new ChannelListener(redis);
        await redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal($"{cluster.Prefix}:{channel}"), (_, message) => listener.Messages.Enqueue(message.ToString()));
        return listener;
    }

    private sealed class ChannelListener(ConnectionMultiplexer redis) : IAsyncDisposable
    {
        public ConcurrentQueue<string> Messages { get; } = new();

        /// <summary>
        /// Waits (at most 10 s) for a message (matching <paramref name="match"/>), then a moment more: every node
        /// heard it at about the same time as this listener.
        /// </summary>
        public async Task<bool> WaitAsync(Func<string, bool>? match = null)
        {
            for (var i = 0; i < 200; i++)
            {
                if (Messages.Any(match ?? (_ => true)))
                {
                    await Task.Delay(200);
                    return true;
                }
                await Task.Delay(50);
            }
            return false;
        }

        public async ValueTask DisposeAsync() => await redis.DisposeAsync();
    }

    private static string Answer(string body) => System.Text.Json.Nodes.JsonNode.Parse(body)!["choices"]![0]!["message"]!["content"]!.GetValue<string>();
}
