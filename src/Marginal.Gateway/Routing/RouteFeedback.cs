using System.Collections.Concurrent;
using System.Numerics.Tensors;

namespace Marginal.Gateway.Routing;

/// <summary>
/// Turns feedback on routed requests into labelled examples that move later learned decisions. The router remembers the
/// prompt embedding of each request it sent to the weak model (in memory, the latest <c>capacity</c> ones); feedback on
/// one of them becomes a label: a bad score (&lt; 0.5) or a failure outcome means the strong model was needed (label 1),
/// a good one that the weak model sufficed (label 0). A later prompt whose embedding is within cosine
/// <see cref="MinSimilarity"/> of labelled examples gets its model score blended with theirs:
/// <c>(score + Σ sim·label) / (1 + Σ sim)</c> over the nearest <see cref="Neighbours"/>. Feedback on a request the strong
/// model served says nothing about the weak one and is ignored. Labels live per route alias, survive config reloads
/// and are lost on restart (the feedback rows themselves are in the ledger). Thread-safe.
/// </summary>
public sealed class RouteFeedback(int capacity = 10_000)
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
        while (_pendingOrder.Count > capacity && _pendingOrder.TryDequeue(out var oldest))
        {
            _pending.TryRemove(oldest, out _);
        }
    }

    /// <summary>Learns from feedback on <paramref name="requestId"/>; false when the request is unknown or the feedback says nothing.</summary>
    public bool Learn(string requestId, double? score, string? outcome)
    {
        var label = score is { } s ? (s < 0.5 ? 1f : 0f)
            : outcome is null ? (float?)null
            : FailureOutcomes.Contains(outcome, StringComparer.OrdinalIgnoreCase) ? 1f
            : SuccessOutcomes.Contains(outcome, StringComparer.OrdinalIgnoreCase) ? 0f
            : null;
        if (label is null || !_pending.TryRemove(requestId, out var request))
        {
            return false;
        }
        _memories.GetOrAdd(request.Alias, _ => new Memory(capacity)).Add(request.Embedding, label.Value);
        return true;
    }

    /// <summary>The model's score for <paramref name="embedding"/>, blended with labelled feedback on similar prompts.</summary>
    public double Adjust(string alias, ReadOnlySpan<float> embedding, double score) =>
        _memories.TryGetValue(alias, out var memory) ? memory.Blend(embedding, score) : score;

    /// <summary>Labelled examples held for <paramref name="alias"/>.</summary>
    public int Count(string alias) => _memories.TryGetValue(alias, out var memory) ? memory.Count : 0;

    private sealed class Memory(int capacity)
    {
        private readonly Lock _lock = new();
        private readonly List<(float[] Vector, float Label)> _examples = [];

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

        public void Add(float[] vector, float label)
        {
            lock (_lock)
            {
                if (_examples.Count >= capacity)
                {
                    _examples.RemoveAt(0);
                }
                _examples.Add((vector, label));
            }
        }

        public double Blend(ReadOnlySpan<float> embedding, double score)
        {
            Span<(float Similarity, float Label)> best = stackalloc (float, float)[Neighbours];
            var found = 0;
            lock (_lock)
            {
                foreach (var (vector, label) in _examples)
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
