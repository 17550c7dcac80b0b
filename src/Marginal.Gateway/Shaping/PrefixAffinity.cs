using System.Text;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Shaping;

/// <summary>
/// Picks the owned replica for a request so that requests sharing a long prefix land on the same replica, whose KV
/// cache already holds that prefix. The key is a hash of the prompt's first <see cref="PrefixChars"/> characters; the
/// replica is chosen by rendezvous (highest-random-weight) hashing, so adding or removing a replica moves only the
/// keys that were on it, with a load bound after Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing with Bounded
/// Loads" (SODA 2018): a replica is skipped when taking the request would put it above
/// <c>ceil(c × (in-flight + 1) ÷ replicas)</c>, and the key falls to its next-ranked replica. With c = 1.25 no
/// replica carries more than 25% above the mean, while a prefix keeps its replica as long as that replica is not hot.
/// Thread-safe and allocation-light; it holds no state of its own (loads are the caller's counts).
/// </summary>
public sealed class PrefixAffinity(int prefixChars = 4096, double loadBound = 1.25)
{
    /// <summary>How many leading characters of the prompt make the affinity key.</summary>
    public int PrefixChars { get; } = prefixChars > 0 ? prefixChars : throw new ArgumentOutOfRangeException(nameof(prefixChars));

    /// <summary>The bound c ≥ 1 on a replica's load relative to the mean.</summary>
    public double LoadBound { get; } = loadBound >= 1 ? loadBound : throw new ArgumentOutOfRangeException(nameof(loadBound));

    /// <summary>
    /// The affinity key of a conversation: a 64-bit hash of its shared part, cut to <see cref="PrefixChars"/>
    /// characters. The shared part is every message before the last (system prompt, earlier turns), roles included:
    /// the last message is the new turn, which differs from request to request. A one-message prompt is its own prefix.
    /// </summary>
    public ulong KeyOf(IEnumerable<ChatMessage> messages)
    {
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var shared = list.Count > 1 ? list.Count - 1 : list.Count;
        var prefix = new StringBuilder(Math.Min(PrefixChars, 1024));
        for (var i = 0; i < shared && prefix.Length < PrefixChars; i++)
        {
            prefix.Append(list[i].Role.Value).Append('\n').Append(list[i].Text).Append('\n');
        }
        return KeyOf(prefix.Length > PrefixChars ? prefix.ToString(0, PrefixChars) : prefix.ToString());
    }

    /// <summary>The affinity key of a prompt text already cut to the prefix.</summary>
    public static ulong KeyOf(string prefix)
    {
        // FNV-1a, 64-bit, over the UTF-16 code units: stable across processes (string.GetHashCode is not), no package needed.
        var hash = 14695981039346656037UL;
        foreach (var c in prefix)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }
        return hash;
    }

    /// <summary>
    /// The index of the replica for <paramref name="key"/> among <paramref name="loads"/> (the requests each replica
    /// has in flight): the highest-ranked replica for the key whose load stays within the bound. Always returns a
    /// replica: the bound is at least the mean, so some replica is under it.
    /// </summary>
    public int Pick(ulong key, ReadOnlySpan<int> loads)
    {
        if (loads.IsEmpty)
        {
            throw new ArgumentException("At least one replica is needed.", nameof(loads));
        }
        long total = 0;
        foreach (var load in loads)
        {
            total += load;
        }
        var cap = (long)Math.Ceiling(LoadBound * (total + 1) / loads.Length);
        var best = -1;
        ulong bestWeight = 0;
        var fallback = 0;
        for (var i = 0; i < loads.Length; i++)
        {
            var weight = Weight(key, i);
            if (loads[i] + 1 <= cap && (best < 0 || weight > bestWeight))
            {
                best = i;
                bestWeight = weight;
            }
            if (loads[i] < loads[fallback])
            {
                fallback = i;
            }
        }
        return best >= 0 ? best : fallback;
    }

    /// <summary>The replicas in the key's rendezvous order, first choice first (ignoring load).</summary>
    public static int[] Ranking(ulong key, int replicas)
    {
        var order = Enumerable.Range(0, replicas).ToArray();
        Array.Sort(order, (a, b) => Weight(key, b).CompareTo(Weight(key, a)));
        return order;
    }

    // SplitMix64 finaliser over key and replica index: a fast, well-mixed weight per (key, replica) pair.
    private static ulong Weight(ulong key, int replica)
    {
        var z = key ^ (0x9E3779B97F4A7C15UL * (ulong)(replica + 1));
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
