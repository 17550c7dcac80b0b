using Marginal.Core.Caching;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Model;
using Marginal.Storage.Redis;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Marginal.Server.Cluster;

/// <summary>
/// The semantic cache shared by every node (<see cref="ISharedSemanticEntries"/>). Lookups stay in each node's
/// in-process index; what travels is the entry. A node that adds one stores its answer in the shared exact store
/// (<see cref="RedisResponseCacheStore"/>, key <c>semantic:&lt;guid&gt;</c>, the entry's time to live), adds the entry
/// (scope, prompt, vector, embeddings name, answer key, expiry; JSON) to the sorted set <c>&lt;prefix&gt;:semantic-entries</c>
/// scored by its expiry, and publishes it on channel <c>&lt;prefix&gt;:semantic</c>; every other node adds it to its own
/// index. The set is trimmed on each add to the live entries and at most <c>cache.semantic.max_entries</c> of them, so
/// a node that starts later loads those once, in the background (it is ready at once; until an entry is loaded, a
/// query it would have answered misses). The scope carries the tenant, so an entry is found only by its tenant's
/// requests on any node. Redis unreachable: the entry stays on this node only (logged once per outage). A node whose
/// subscription comes back loads the live entries again once it hears itself on the channel, skipping those it holds
/// (by answer key), so the entries published while it was cut off reach it without a restart. Thread-safe.
/// </summary>
internal sealed partial class ClusterSemanticCache(ClusterRedis redis, GatewayModelSource models, TimeProvider time, ILogger<ClusterSemanticCache> logger)
    : ISharedSemanticEntries, IHostedService, IDisposable
{
    private const int LoadPage = 1000;

    private readonly string _node = Guid.NewGuid().ToString("N")[..12];
    private readonly Lock _lock = new();
    private readonly Queue<SharedSemanticEntry> _early = new();
    // Answer keys of the entries from other nodes handed on (at most max_entries, oldest forgotten first): an entry heard
    // live and loaded again on a reconnect is indexed once.
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private readonly Queue<string> _knownOrder = new();
    private readonly RedisReachability _reachability = new(logger, "shared semantic cache");
    private Action<SharedSemanticEntry>? _listener;
    private readonly CancellationTokenSource _stopping = new();
    private IAsyncDisposable? _subscription;
    private Task _loading = Task.CompletedTask;

    private RedisKey Entries => $"{redis.KeyPrefix}:semantic-entries";

    /// <summary>Subscribes, then loads the entries still live (newest <c>max_entries</c>) in the background, so none added meanwhile is missed.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = await redis.SemanticEntries.SubscribeAsync(Heard).ConfigureAwait(false);
        if (models.Current.Config.Cache.Semantic.Enabled)
        {
            lock (_lock)
            {
                _loading = Task.Run(() => LoadAsync(_stopping.Token), CancellationToken.None);
            }
        }
        // After the first load is under way, so a reload on reconnect queues behind it.
        redis.Connection.ConnectionRestored += Restored;
    }

    private void Restored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Subscription || !models.Current.Config.Cache.Semantic.Enabled)
        {
            return;
        }
        lock (_lock)
        {
            _loading = ReloadAsync(_loading, _stopping.Token);
        }
    }

    /// <summary>After <paramref name="previous"/>: listening again first, so an entry published from now on is heard and one published before is in the set; tried until it succeeds.</summary>
    private async Task ReloadAsync(Task previous, CancellationToken cancellationToken)
    {
        await previous.ConfigureAwait(false);
        await redis.SemanticEntries.CatchUpAsync(LoadAsync, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Hands on the live entries this node does not hold; false when Redis failed mid-way.</summary>
    private async Task<bool> LoadAsync(CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var loaded = 0;
        var semantic = models.Current.Config.Cache.Semantic;
        try
        {
            var database = redis.Connection.GetDatabase();
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            await database.SortedSetRemoveRangeByScoreAsync(Entries, double.NegativeInfinity, now).ConfigureAwait(false);
            var count = (int)Math.Min(await database.SortedSetLengthAsync(Entries).ConfigureAwait(false), semantic.MaxEntries);
            // Oldest first, so the index's own oldest-first eviction keeps the newest.
            for (var start = -count; start < 0 && !cancellationToken.IsCancellationRequested; start += LoadPage)
            {
                var page = await database.SortedSetRangeByRankAsync(Entries, start, Math.Min(start + LoadPage, 0) - 1).ConfigureAwait(false);
                foreach (var member in page)
                {
                    if (Read(JsonSerializer.Deserialize(((byte[])member!).AsSpan(), SemanticEntryJson.Default.SemanticEntryMessage)) is { } entry && Deliver(entry))
                    {
                        loaded++;
                    }
                }
            }
            var took = time.GetElapsedTime(started);
            LogLoaded(logger, loaded, took.TotalMilliseconds);
            return true;
        }
        catch (Exception error) when (error is RedisException or TimeoutException or ObjectDisposedException)
        {
            // Unreachable or shutting down: this node starts with what it has; the entries are misses, never errors.
            _reachability.Failed(error);
            return false;
        }
        catch (JsonException)
        {
            // Written by another version: what was read before it stays.
            return true;
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        redis.Connection.ConnectionRestored -= Restored;
        await _stopping.CancelAsync().ConfigureAwait(false);
        Task loading;
        lock (_lock)
        {
            loading = _loading;
        }
        await loading.ConfigureAwait(false);
        if (_subscription is not null)
        {
            await _subscription.DisposeAsync().ConfigureAwait(false);
        }
    }

    public void Dispose() => _stopping.Dispose();

    public async ValueTask ShareAsync(SharedSemanticEntry entry, CachedAnswer answer, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (entry.Expires <= now)
        {
            return;
        }
        var message = JsonSerializer.Serialize(new SemanticEntryMessage(_node, entry.Scope, entry.Prompt,
            MemoryMarshal.AsBytes(entry.Vector.AsSpan()).ToArray(), entry.Embeddings, entry.AnswerKey, entry.Expires.ToUnixTimeMilliseconds()), SemanticEntryJson.Default.SemanticEntryMessage);
        try
        {
            // The answer first: a node that hears of the entry finds its answer there.
            await redis.Cache.SetAsync(entry.AnswerKey, answer, entry.Expires - now, cancellationToken).ConfigureAwait(false);
            var database = redis.Connection.GetDatabase();
            var max = models.Current.Config.Cache.Semantic.MaxEntries;
            await Task.WhenAll(
                database.SortedSetAddAsync(Entries, message, entry.Expires.ToUnixTimeMilliseconds()),
                database.SortedSetRemoveRangeByScoreAsync(Entries, double.NegativeInfinity, now.ToUnixTimeMilliseconds()),
                database.SortedSetRemoveRangeByRankAsync(Entries, 0, -max - 1),
                redis.SemanticEntries.PublishAsync(message)).ConfigureAwait(false);
            _reachability.Succeeded();
        }
        catch (Exception error) when (error is RedisException or TimeoutException or ObjectDisposedException)
        {
            // Unreachable, refusing writes (maxmemory) or shutting down: the entry stays on this node, the answer stands.
            _reachability.Failed(error);
        }
    }

    public async ValueTask<CachedAnswer?> AnswerAsync(string answerKey, CancellationToken cancellationToken) =>
        await redis.Cache.GetAsync(answerKey, cancellationToken).ConfigureAwait(false);

    public void Listen(Action<SharedSemanticEntry> added)
    {
        lock (_lock)
        {
            _listener = added;
            while (_early.TryDequeue(out var entry))
            {
                added(entry);
            }
        }
    }

    private void Heard(string message)
    {
        SemanticEntryMessage? read;
        try
        {
            read = JsonSerializer.Deserialize(message, SemanticEntryJson.Default.SemanticEntryMessage);
        }
        catch (JsonException)
        {
            // Written by another version.
            return;
        }
        if (Read(read) is { } entry)
        {
            _ = Deliver(entry);
        }
    }

    /// <summary>To the cache, or held (at most <c>max_entries</c>, newest kept) until the cache is built; false for an entry handed on before.</summary>
    private bool Deliver(SharedSemanticEntry entry)
    {
        lock (_lock)
        {
            var max = models.Current.Config.Cache.Semantic.MaxEntries;
            if (!_known.Add(entry.AnswerKey))
            {
                return false;
            }
            _knownOrder.Enqueue(entry.AnswerKey);
            while (_knownOrder.Count > max)
            {
                _known.Remove(_knownOrder.Dequeue());
            }
            if (_listener is { } listener)
            {
                listener(entry);
                return true;
            }
            _early.Enqueue(entry);
            while (_early.Count > max)
            {
                _early.Dequeue();
            }
            return true;
        }
    }

    /// <summary>The entry <paramref name="message"/> carries; null for this node's own, or one with a field missing (another version).</summary>
    private SharedSemanticEntry? Read(SemanticEntryMessage? message)
    {
        if (message is null || message.Node == _node || message.Vector is not { Length: > 0 } bytes || bytes.Length % sizeof(float) != 0
            || message.Scope is null || message.Prompt is null || message.Embeddings is null || message.AnswerKey is null)
        {
            return null;
        }
        return new SharedSemanticEntry(message.Scope, message.Prompt, MemoryMarshal.Cast<byte, float>(bytes).ToArray(), message.Embeddings, message.AnswerKey,
            DateTimeOffset.FromUnixTimeMilliseconds(message.ExpiresMs));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded {Count} shared semantic cache entries in {Milliseconds:F0} ms")]
    private static partial void LogLoaded(ILogger logger, int count, double milliseconds);
}

/// <summary>A <see cref="SharedSemanticEntry"/> on the wire: the vector as little-endian float bytes (base64 in JSON), expiry in Unix milliseconds.</summary>
internal sealed record SemanticEntryMessage(string Node, string Scope, string Prompt, byte[] Vector, string Embeddings, string AnswerKey, long ExpiresMs);

[JsonSerializable(typeof(SemanticEntryMessage))]
internal sealed partial class SemanticEntryJson : JsonSerializerContext;
