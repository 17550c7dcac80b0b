using Marginal.Core.Caching;

namespace Marginal.Gateway.Caching;

/// <summary>
/// The in-process exact cache: least recently used goes first once either bound (entries, bytes) is passed; an entry
/// past its time to live is a miss and is dropped. Thread-safe (one lock; a lookup is a dictionary read and a list move).
/// </summary>
public sealed class MemoryResponseCacheStore(int maxEntries, long maxBytes, TimeProvider time) : IResponseCacheStore
{
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _recency = new();
    private readonly Lock _lock = new();
    private long _bytes;

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

    public ValueTask<CachedAnswer?> GetAsync(string key, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out var node))
            {
                return ValueTask.FromResult<CachedAnswer?>(null);
            }
            if (node.Value.Expires <= now)
            {
                Remove(node);
                return ValueTask.FromResult<CachedAnswer?>(null);
            }
            _recency.Remove(node);
            _recency.AddFirst(node);
            return ValueTask.FromResult<CachedAnswer?>(node.Value.Answer);
        }
    }

    public ValueTask SetAsync(string key, CachedAnswer answer, TimeSpan ttl, CancellationToken cancellationToken)
    {
        if (answer.SizeBytes > maxBytes)
        {
            return ValueTask.CompletedTask;
        }
        var entry = new Entry(key, answer, time.GetUtcNow() + ttl);
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var old))
            {
                Remove(old);
            }
            _entries[key] = _recency.AddFirst(entry);
            _bytes += answer.SizeBytes;
            while (_entries.Count > maxEntries || _bytes > maxBytes)
            {
                Remove(_recency.Last!);
            }
        }
        return ValueTask.CompletedTask;
    }

    private void Remove(LinkedListNode<Entry> node)
    {
        _recency.Remove(node);
        _entries.Remove(node.Value.Key);
        _bytes -= node.Value.Answer.SizeBytes;
    }

    private sealed record Entry(string Key, CachedAnswer Answer, DateTimeOffset Expires);
}
