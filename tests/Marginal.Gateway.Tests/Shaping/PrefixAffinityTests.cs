using Marginal.Gateway.Shaping;
using Microsoft.Extensions.AI;
using Xunit.Abstractions;

namespace Marginal.Gateway.Tests.Shaping;

public sealed class PrefixAffinityTests(ITestOutputHelper output)
{
    private static List<ChatMessage> Conversation(string system, string question) =>
        [new(ChatRole.System, system), new(ChatRole.User, question)];

    [Fact]
    public void Pick_SameLongPrefix_SameReplicaWhateverTheTail()
    {
        var affinity = new PrefixAffinity(prefixChars: 200);
        var system = string.Concat(Enumerable.Repeat("You are a careful assistant for the billing team. ", 10));

        var picks = Enumerable.Range(0, 50)
            .Select(i => affinity.Pick(affinity.KeyOf(Conversation(system, $"question {i}")), [0, 0, 0, 0]))
            .Distinct()
            .ToList();

        Assert.Single(picks);
    }

    [Fact]
    public void Pick_DifferentPrefixes_SpreadOverReplicas()
    {
        var affinity = new PrefixAffinity(prefixChars: 64);

        var picks = Enumerable.Range(0, 200).Select(i => affinity.Pick(PrefixAffinity.KeyOf($"system prompt number {i}"), [0, 0])).ToList();

        Assert.InRange(picks.Count(p => p == 0), 60, 140);
    }

    [Fact]
    public void Pick_PreferredReplicaAtTheBound_TakesNextRankedReplica()
    {
        var affinity = new PrefixAffinity(loadBound: 1.25);
        var key = PrefixAffinity.KeyOf("shared prefix");
        var ranking = PrefixAffinity.Ranking(key, 2);
        var loads = new int[2];
        // Preferred replica has 5 in flight, the other none: cap = ceil(1.25 × 6 ÷ 2) = 4, so the preferred is over it.
        loads[ranking[0]] = 5;

        Assert.Equal(ranking[1], affinity.Pick(key, loads));
        // With 1 in flight: cap = ceil(1.25 × 2 ÷ 2) = 2, and the preferred replica takes it.
        loads[ranking[0]] = 1;
        Assert.Equal(ranking[0], affinity.Pick(key, loads));
    }

    [Fact]
    public void Pick_OneHotPrefix_NoReplicaExceedsTheLoadBound()
    {
        var affinity = new PrefixAffinity(loadBound: 1.25);
        var key = PrefixAffinity.KeyOf("everyone sends this prefix");
        var loads = new int[3];

        for (var i = 0; i < 300; i++)
        {
            loads[affinity.Pick(key, loads)]++;
            var total = loads.Sum();
            Assert.True(loads.Max() <= Math.Ceiling(1.25 * total / 3), $"loads {string.Join(",", loads)} over the bound");
        }
    }

    /// <summary>
    /// The measurement behind docs/benchmarks.md, "Prefix affinity": an emulated prefix (KV) cache per replica (LRU of
    /// <c>slots</c> prefixes), a seeded workload of shared-prefix requests over 2 replicas with a fixed number in flight,
    /// routed round-robin or by affinity. Hit share is the share of requests whose prefix was already on their replica.
    /// </summary>
    [Fact]
    public void Workload_SharedPrefixesOverTwoReplicas_AffinityHitsMoreThanRoundRobin()
    {
        var (roundRobin, _) = Simulate(affinity: null);
        var (withAffinity, maxShare) = Simulate(new PrefixAffinity(prefixChars: 4096, loadBound: 1.25));

        output.WriteLine($"round-robin hit share {roundRobin:P1}; affinity hit share {withAffinity:P1}; busiest replica's share of requests {maxShare:P1}");
        Assert.True(withAffinity > roundRobin + 0.2, $"affinity {withAffinity:P1} vs round-robin {roundRobin:P1}");
        Assert.True(maxShare <= 0.625, $"busiest replica took {maxShare:P1}");
    }

    private static (double HitShare, double BusiestShare) Simulate(PrefixAffinity? affinity)
    {
        const int Replicas = 2, Prefixes = 16, Slots = 10, Requests = 4000, InFlight = 8;
        var random = new Random(42);
        var caches = Enumerable.Range(0, Replicas).Select(_ => new LinkedList<int>()).ToArray();
        var loads = new int[Replicas];
        var served = new int[Replicas];
        var running = new Queue<int>();
        var keys = Enumerable.Range(0, Prefixes).Select(p => PrefixAffinity.KeyOf($"system prompt {p}: " + new string('x', 2000))).ToArray();
        var hits = 0;
        for (var i = 0; i < Requests; i++)
        {
            if (running.Count == InFlight)
            {
                loads[running.Dequeue()]--;
            }
            var prefix = random.Next(Prefixes);
            var replica = affinity is null ? i % Replicas : affinity.Pick(keys[prefix], loads);
            var cache = caches[replica];
            if (cache.Remove(prefix))
            {
                hits++;
            }
            cache.AddFirst(prefix);
            if (cache.Count > Slots)
            {
                cache.RemoveLast();
            }
            loads[replica]++;
            served[replica]++;
            running.Enqueue(replica);
        }
        return ((double)hits / Requests, (double)served.Max() / Requests);
    }
}
