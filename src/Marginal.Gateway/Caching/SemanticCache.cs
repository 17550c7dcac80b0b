using Marginal.Core.Caching;

namespace Marginal.Gateway.Caching;

/// <summary>
/// The in-process semantic cache: per scope (tenant, model, options and every message before the last user turn)
/// an exact vector index over the embeddings of the last user turns answered. A lookup takes the single nearest
/// entry; it is a hit only when its similarity reaches the threshold, it is nearer than the runner-up (a different
/// cached prompt) by at least the minimum margin, and the two prompts pass <see cref="PromptChecks"/>. Oldest entries
/// go first past <c>maxEntries</c>; an expired one is dropped when met.
/// Thread-safe (one lock).
/// </summary>
public sealed class SemanticCache(int dimensions, int maxEntries, TimeProvider time)
{
    private readonly Dictionary<string, VectorIndex> _scopes = new(StringComparer.Ordinal);
    private readonly Dictionary<long, Entry> _entries = [];
    private readonly Queue<long> _order = new();
    private readonly Lock _lock = new();
    private long _nextId;

    /// <summary>The vector length every entry and query has.</summary>
    public int Dimensions => dimensions;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>The nearest live entry of <paramref name="scope"/> and its similarity, whether or not it passes; null when none.</summary>
    public SemanticMatch? Nearest(string scope, ReadOnlySpan<float> query) => NearestTwo(scope, query)?.Best;

    /// <summary>
    /// The nearest live entry of <paramref name="scope"/> and the runner-up's similarity: the second-nearest live entry
    /// whose prompt differs from the nearest's (the same prompt answered twice is not a rival); 0 when there is none.
    /// </summary>
    public (SemanticMatch Best, float RunnerUp)? NearestTwo(string scope, ReadOnlySpan<float> query)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            while (_scopes.TryGetValue(scope, out var index) && index.NearestTwo(query) is var ((id, similarity), second))
            {
                var entry = _entries[id];
                if (entry.Expires <= now)
                {
                    Remove(id);
                    continue;
                }
                if (second is var (secondId, secondSimilarity) && _entries[secondId] is var rival)
                {
                    if (rival.Expires <= now)
                    {
                        Remove(secondId);
                        continue;
                    }
                    if (!string.Equals(rival.Prompt, entry.Prompt, StringComparison.Ordinal))
                    {
                        return (new SemanticMatch(entry.Prompt, entry.Answer, similarity, entry.AnswerKey), secondSimilarity);
                    }
                }
                return (new SemanticMatch(entry.Prompt, entry.Answer, similarity, entry.AnswerKey), 0);
            }
            return null;
        }
    }

    /// <summary>
    /// A hit: the nearest entry when it reaches <paramref name="threshold"/>, is nearer than the runner-up by at least
    /// <paramref name="minMargin"/> (a query about equally close to two different cached prompts is ambiguous) and
    /// passes every check; else null with the reason (<c>threshold</c>, <c>margin</c> or the failed check).
    /// </summary>
    public SemanticMatch? Find(string scope, string prompt, ReadOnlySpan<float> query, double threshold, double minMargin, out string? refusedBy)
    {
        refusedBy = null;
        if (NearestTwo(scope, query) is not var (match, runnerUp))
        {
            return null;
        }
        if (match.Similarity < threshold)
        {
            refusedBy = "threshold";
            return null;
        }
        if (match.Similarity - runnerUp < minMargin)
        {
            refusedBy = "margin";
            return null;
        }
        refusedBy = PromptChecks.FirstFailed(prompt, match.Prompt, PromptChecks.All);
        return refusedBy is null ? match : null;
    }

    public void Add(string scope, string prompt, float[] vector, CachedAnswer answer, TimeSpan ttl) =>
        Add(scope, prompt, vector, answer, null, time.GetUtcNow() + ttl);

    /// <summary>
    /// Adds an entry whose answer is held here (<paramref name="answer"/>) or only in a shared store under
    /// <paramref name="answerKey"/> (an entry from another node of the cluster), live until <paramref name="expires"/>.
    /// </summary>
    public void Add(string scope, string prompt, float[] vector, CachedAnswer? answer, string? answerKey, DateTimeOffset expires)
    {
        if (expires <= time.GetUtcNow())
        {
            return;
        }
        lock (_lock)
        {
            var id = _nextId++;
            if (!_scopes.TryGetValue(scope, out var index))
            {
                _scopes[scope] = index = new VectorIndex(dimensions);
            }
            index.Add(id, vector);
            _entries[id] = new Entry(scope, prompt, answer, answerKey, expires);
            _order.Enqueue(id);
            while (_entries.Count > maxEntries && _order.TryDequeue(out var oldest))
            {
                Remove(oldest);
            }
        }
    }

    private void Remove(long id)
    {
        if (!_entries.Remove(id, out var entry))
        {
            return;
        }
        var index = _scopes[entry.Scope];
        index.Remove(id);
        if (index.Count == 0)
        {
            _scopes.Remove(entry.Scope);
        }
    }

    private sealed record Entry(string Scope, string Prompt, CachedAnswer? Answer, string? AnswerKey, DateTimeOffset Expires);
}

/// <summary>
/// A semantic cache entry found for a prompt: the prompt it answered, its answer, and the cosine similarity. An entry
/// from another node of the cluster has no <paramref name="Answer"/> here, only the key of it in the shared store.
/// </summary>
public sealed record SemanticMatch(string Prompt, CachedAnswer? Answer, float Similarity, string? AnswerKey = null);
