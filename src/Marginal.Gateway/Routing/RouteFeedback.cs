using Marginal.Core.Routing;
using System.Collections.Concurrent;
using System.Numerics.Tensors;
using Marginal.Core.Ledger;

namespace Marginal.Gateway.Routing;

/// <summary>
/// Turns feedback on routed requests into labelled examples that move later learned decisions. The router remembers the
/// prompt embedding of each request it sent to the weak model (in memory, the latest <c>capacity</c> ones); feedback on
/// one of them becomes a label: a bad score (&lt; 0.5) or a failure outcome means the strong model was needed (label 1),
/// a good one that the weak model sufficed (label 0). A later prompt whose embedding is within cosine
/// <see cref="MinSimilarity"/> of labelled examples gets its model score blended with theirs:
/// <c>(score + Σ sim·label) / (1 + Σ sim)</c> over the nearest <see cref="Neighbours"/>. Feedback on a request the strong
/// model served says nothing about the weak one and is ignored. Labels live per route alias and survive config reloads;
/// with a store that keeps <see cref="RouteExample"/>s they survive restarts too (<see cref="Restore"/>). A label is held
/// once per request, however often it is heard (a cluster may hear it live and again when it resyncs). With
/// <paramref name="shared"/> (a cluster), a remembered request is also kept where the other nodes find it. Thread-safe.
/// </summary>
public sealed class RouteFeedback(int capacity = 10_000, ISharedRoutePending? shared = null)
{
    public const double MinSimilarity = 0.85;
    public const int Neighbours = 5;

    private static readonly string[] FailureOutcomes = ["fail", "failed", "failure", "rejected", "wrong", "bad", "escalated", "unresolved"];
    private static readonly string[] SuccessOutcomes = ["success", "succeeded", "resolved", "accepted", "good", "correct", "ok"];

    private readonly ConcurrentDictionary<string, (string Alias, float[] Embedding)> _pending = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _pendingOrder = new();
    private readonly ConcurrentDictionary<string, Memory> _memories = new(StringComparer.Ordinal);

    /// <summary>Keeps the embedding of a request the weak model is about to serve, for feedback that may come later.</summary>
    public void Remember(string requestId, string alias, float[] embedding)
    {
        if (requestId.Length == 0 || !_pending.TryAdd(requestId, (alias, embedding)))
        {
            return;
        }
        _pendingOrder.Enqueue(requestId);
        shared?.Keep(new RouteExample(requestId, alias, embedding));
        while (_pendingOrder.Count > capacity && _pendingOrder.TryDequeue(out var oldest))
        {
            _pending.TryRemove(oldest, out _);
        }
    }

    /// <summary>Learns from feedback on <paramref name="requestId"/>; false when the request is unknown or the feedback says nothing.</summary>
    public bool Learn(string requestId, double? score, string? outcome) => Learn(requestId, score, outcome, out _);

    /// <summary>
    /// Learns from feedback on <paramref name="requestId"/> and hands back the labelled example (for the store, so it
    /// survives a restart); false with a null example when the request is unknown or the feedback says nothing.
    /// </summary>
    public bool Learn(string requestId, double? score, string? outcome, out RouteExample? example)
    {
        example = null;
        return LabelOf(score, outcome) is { } label && Learn(requestId, label, out example);
    }

    /// <summary>
    /// Learns <paramref name="label"/> (1: the strong model was needed, 0: the weak one sufficed) for a request this
    /// router remembers; false with a null example when it does not remember it (another node routed it, or it aged out).
    /// </summary>
    public bool Learn(string requestId, float label, out RouteExample? example)
    {
        example = null;
        if (!_pending.TryGetValue(requestId, out var request))
        {
            return false;
        }
        example = new RouteExample(requestId, request.Alias, request.Embedding);
        return Add(example, label);
    }

    /// <summary>
    /// Adds <paramref name="example"/> with <paramref name="label"/> (learned here, by another node, or read from the
    /// store) and forgets the request as pending; false when a label for its request is held already.
    /// </summary>
    public bool Add(RouteExample example, float label)
    {
        ArgumentNullException.ThrowIfNull(example);
        _pending.TryRemove(example.RequestId, out _);
        return _memories.GetOrAdd(example.Alias, _ => new Memory(capacity)).Add(example.RequestId, example.Embedding, label);
    }

    /// <summary>Whether a label for <paramref name="requestId"/> is held (on any alias).</summary>
    public bool Holds(string requestId)
    {
        foreach (var memory in _memories.Values)
        {
            if (memory.Holds(requestId))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Rebuilds the labels from stored examples and their feedback rows (on start): each example takes the label of
    /// the first of its request's feedback rows that says something, as <see cref="Learn(string, double?, string?)"/>
    /// did when it arrived. Returns how many labels were restored.
    /// </summary>
    public int Restore(IEnumerable<RouteExample> examples, IEnumerable<Feedback> feedback)
    {
        var labels = new Dictionary<string, float>(StringComparer.Ordinal);
        foreach (var row in feedback)
        {
            if (!labels.ContainsKey(row.RequestId) && LabelOf(row.Score, row.Outcome) is { } label)
            {
                labels[row.RequestId] = label;
            }
        }
        var restored = 0;
        foreach (var example in examples)
        {
            if (labels.TryGetValue(example.RequestId, out var label) && Add(example, label))
            {
                restored++;
            }
        }
        return restored;
    }

    /// <summary>1 when the strong model was needed (score &lt; 0.5 or a failure outcome), 0 when the weak one sufficed, else null.</summary>
    public static float? LabelOf(double? score, string? outcome) =>
        score is { } s ? (s < 0.5 ? 1f : 0f)
        : outcome is null ? null
        : FailureOutcomes.Contains(outcome, StringComparer.OrdinalIgnoreCase) ? 1f
        : SuccessOutcomes.Contains(outcome, StringComparer.OrdinalIgnoreCase) ? 0f
        : null;

    /// <summary>The model's score for <paramref name="embedding"/>, blended with labelled feedback on similar prompts.</summary>
    public double Adjust(string alias, ReadOnlySpan<float> embedding, double score) =>
        _memories.TryGetValue(alias, out var memory) ? memory.Blend(embedding, score) : score;

    /// <summary>Labelled examples held for <paramref name="alias"/>.</summary>
    public int Count(string alias) => _memories.TryGetValue(alias, out var memory) ? memory.Count : 0;

    private sealed class Memory(int capacity)
    {
        private readonly Lock _lock = new();
        private readonly List<(string RequestId, float[] Vector, float Label)> _examples = [];
        private readonly HashSet<string> _requests = new(StringComparer.Ordinal);

        public int Count
        {
            get
            {
                lock (_lock)
                {
                    return _examples.Count;
                }
            }
        }

        public bool Holds(string requestId)
        {
            lock (_lock)
            {
                return _requests.Contains(requestId);
            }
        }

        /// <summary>False (nothing added) when <paramref name="requestId"/> is held already.</summary>
        public bool Add(string requestId, float[] vector, float label)
        {
            lock (_lock)
            {
                if (!_requests.Add(requestId))
                {
                    return false;
                }
                if (_examples.Count >= capacity)
                {
                    _requests.Remove(_examples[0].RequestId);
                    _examples.RemoveAt(0);
                }
                _examples.Add((requestId, vector, label));
                return true;
            }
        }

        public double Blend(ReadOnlySpan<float> embedding, double score)
        {
            Span<(float Similarity, float Label)> best = stackalloc (float, float)[Neighbours];
            var found = 0;
            lock (_lock)
            {
                foreach (var (_, vector, label) in _examples)
                {
                    var similarity = TensorPrimitives.Dot(embedding, vector);
                    if (similarity < MinSimilarity || (found == Neighbours && similarity <= best[found - 1].Similarity))
                    {
                        continue;
                    }
                    var j = found < Neighbours ? found++ : Neighbours - 1;
                    while (j > 0 && best[j - 1].Similarity < similarity)
                    {
                        best[j] = best[j - 1];
                        j--;
                    }
                    best[j] = (similarity, label);
                }
            }
            double weight = 1, sum = score;
            for (var i = 0; i < found; i++)
            {
                weight += best[i].Similarity;
                sum += best[i].Similarity * best[i].Label;
            }
            return sum / weight;
        }
    }
}
