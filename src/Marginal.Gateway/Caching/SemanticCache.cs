namespace Marginal.Gateway.Caching;

/// <summary>
/// The in-process semantic cache: per scope (tenant, model, options and every message before the last user turn)
/// an exact vector index over the embeddings of the last user turns answered. A lookup takes the single nearest
/// entry; it is a hit only when its similarity reaches the threshold and the two prompts pass
/// <see cref="PromptChecks"/>. Oldest entries go first past <c>maxEntries</c>; an expired one is dropped when met.
/// Thread-safe (one lock).
/// </summary>
public sealed class SemanticCache(int dimensions, int maxEntries, TimeProvider time)
{
    private readonly Dictionary<string, VectorIndex> _scopes = new(StringComparer.Ordinal);
    private readonly Dictionary<long, Entry> _entries = [];
    private readonly Queue<long> _order = new();
    private readonly Lock _lock = new();
    private long _nextId;

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
    public SemanticMatch? Nearest(string scope, ReadOnlySpan<float> query)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            while (_scopes.TryGetValue(scope, out var index) && index.Nearest(query) is var (id, similarity))
            {
                var entry = _entries[id];
                if (entry.Expires > now)
                {
                    return new SemanticMatch(entry.Prompt, entry.Answer, similarity);
                }
                Remove(id);
            }
            return null;
        }
    }

    /// <summary>A hit: the nearest entry when it reaches <paramref name="threshold"/> and passes every check; else null with the reason.</summary>
    public SemanticMatch? Find(string scope, string prompt, ReadOnlySpan<float> query, double threshold, out string? refusedBy)
    {
        refusedBy = null;
        if (Nearest(scope, query) is not { } match)
        {
            return null;
        }
        if (match.Similarity < threshold)
        {
            refusedBy = "threshold";
            return null;
        }
        refusedBy = PromptChecks.FirstFailed(prompt, match.Prompt, PromptChecks.All);
        return refusedBy is null ? match : null;
    }

    public void Add(string scope, string prompt, float[] vector, CachedAnswer answer, TimeSpan ttl)
    {
        var expires = time.GetUtcNow() + ttl;
        lock (_lock)
        {
            var id = _nextId++;
            if (!_scopes.TryGetValue(scope, out var index))
            {
                _scopes[scope] = index = new VectorIndex(dimensions);
            }
            index.Add(id, vector);
            _entries[id] = new Entry(scope, prompt, answer, expires);
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

    private sealed record Entry(string Scope, string Prompt, CachedAnswer Answer, DateTimeOffset Expires);
}

/// <summary>A semantic cache entry found for a prompt: the prompt it answered, its answer, and the cosine similarity.</summary>
public sealed record SemanticMatch(string Prompt, CachedAnswer Answer, float Similarity);
