using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Marginal.Core.Ledger;
using Marginal.Gateway.Routing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Marginal.Server.Cluster;

/// <summary>
/// Router feedback across the cluster, over <see cref="ClusterRedis.RouteLabels"/>. <c>POST /v1/feedback</c> may reach
/// any node, and the prompt embedding a label needs is in the routing node's memory and, for
/// <c>redis.route_feedback_window</c>, in Redis (<see cref="Marginal.Storage.Redis.RedisRoutePending"/>). The node that takes the feedback
/// learns the label from its own memory or from Redis, stores the example in the shared store (so restarts rebuild it)
/// and announces <c>label &lt;node&gt; &lt;label&gt; &lt;embedding&gt; &lt;request id&gt; &lt;alias&gt;</c> (the embedding as
/// base64 little-endian floats, the request id as base64 UTF-8); every other node adds it to its own
/// <see cref="RouteFeedback"/>, once per request. When neither holds the embedding it announces
/// <c>ask &lt;node&gt; &lt;label&gt; &lt;request id&gt;</c>, and the node that routed the request learns, stores and
/// announces it as above. A node ignores its own messages.
/// <para>
/// Pub/sub reaches only the nodes connected at that moment, so a node whose subscription comes back resyncs from the
/// shared store, the source of truth: once it hears itself on the channel again, it reads the feedback rows given since
/// it was cut off (less <see cref="Overlap"/>, for clock skew between nodes and a late-noticed cut), adds the stored
/// examples of those it holds no label for, and learns the rest as if the feedback had just landed here (its memory,
/// Redis, else an <c>ask</c>). Feedback that landed anywhere while Redis was down is learned this way once it is back.
/// </para>
/// </summary>
internal sealed partial class ClusterRouteFeedback(ClusterRedis redis, RouteFeedback feedback, ILedgerStore? ledger, IRouteExampleStore? examples,
    TimeProvider time, ILogger<ClusterRouteFeedback> logger) : IHostedService, IDisposable
{
    /// <summary>How far before the cut a resync reads feedback rows (clock skew between nodes, a cut noticed late).</summary>
    public static readonly TimeSpan Overlap = TimeSpan.FromMinutes(5);


    private readonly string _node = Guid.NewGuid().ToString("N")[..12];
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stopping = new();
    private IAsyncDisposable? _subscription;
    private DateTimeOffset _started;
    private DateTimeOffset? _cutSince;
    private Task _resyncing = Task.CompletedTask;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _started = time.GetUtcNow();
        _subscription = await redis.RouteLabels.SubscribeAsync(Heard).ConfigureAwait(false);
        redis.Connection.ConnectionFailed += Failed;
        redis.Connection.ConnectionRestored += Restored;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        redis.Connection.ConnectionFailed -= Failed;
        redis.Connection.ConnectionRestored -= Restored;
        await _stopping.CancelAsync().ConfigureAwait(false);
        Task resyncing;
        lock (_lock)
        {
            resyncing = _resyncing;
        }
        await resyncing.ConfigureAwait(false);
        if (_subscription is not null)
        {
            await _subscription.DisposeAsync().ConfigureAwait(false);
        }
    }

    public void Dispose() => _stopping.Dispose();

    /// <summary>Tells the other nodes of <paramref name="label"/> on <paramref name="example"/>, learned (and stored) here.</summary>
    public Task LearnedAsync(RouteExample example, float label)
    {
        redis.RoutePending?.Forget(example.RequestId);
        return PublishAsync(string.Create(CultureInfo.InvariantCulture,
            $"label {_node} {label} {Convert.ToBase64String(MemoryMarshal.AsBytes(example.Embedding.AsSpan()))} {Convert.ToBase64String(Encoding.UTF8.GetBytes(example.RequestId))} {example.Alias}"));
    }

    /// <summary>
    /// Learns <paramref name="label"/> on <paramref name="requestId"/>, which this node's memory does not hold (another
    /// node routed it, or this one before a restart): from the embedding kept in Redis, stored and announced; without
    /// one, handed to the node that routed it. Nothing when a label for the request is held already.
    /// </summary>
    public async Task LearnAsync(string requestId, float label)
    {
        if (feedback.Holds(requestId))
        {
            return;
        }
        RouteExample? example = null;
        if (feedback.Learn(requestId, label, out var remembered))
        {
            example = remembered;
        }
        else if (redis.RoutePending is { } pending && await pending.TakeAsync(requestId).ConfigureAwait(false) is { } kept && feedback.Add(kept, label))
        {
            example = kept;
        }
        if (example is null)
        {
            await PublishAsync(string.Create(CultureInfo.InvariantCulture, $"ask {_node} {label} {requestId}")).ConfigureAwait(false);
            return;
        }
        // Stored before it is announced: a node resyncing either hears the label or finds the example in the store.
        await SaveAsync(example).ConfigureAwait(false);
        await LearnedAsync(example, label).ConfigureAwait(false);
    }

    private async Task PublishAsync(string message)
    {
        try
        {
            await redis.RouteLabels.PublishAsync(message).ConfigureAwait(false);
        }
        catch (Exception error) when (error is RedisException or TimeoutException or ObjectDisposedException)
        {
            LogNotAnnounced(logger, error.Message);
        }
    }

    private async void Heard(string message)
    {
        // The last field is the rest of the message: a request id (a client's Idempotency-Key) may hold spaces.
        var parts = message.Split(' ', 4);
        if (parts.Length < 4 || parts[1] == _node || !float.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var label))
        {
            return;
        }
        switch (parts[0])
        {
            case "label" when parts[3].Split(' ', 3) is [var encoded, var id, var alias] && Decode(encoded) is { } embedding && DecodeId(id) is { } requestId:
                feedback.Add(new RouteExample(requestId, alias, embedding), label);
                break;
            case "ask" when feedback.Learn(parts[3], label, out var example):
                await SaveAsync(example!).ConfigureAwait(false);
                await LearnedAsync(example!, label).ConfigureAwait(false);
                break;
        }
    }

    private void Failed(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Subscription)
        {
            lock (_lock)
            {
                _cutSince ??= time.GetUtcNow();
            }
        }
    }

    private void Restored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Subscription)
        {
            return;
        }
        lock (_lock)
        {
            _resyncing = AfterAsync(_resyncing);
        }
    }

    private async Task AfterAsync(Task previous)
    {
        await previous.ConfigureAwait(false);
        await ResyncAsync(_stopping.Token).ConfigureAwait(false);
    }

    /// <summary>Learns the labels given since the subscription was cut, once listening again, tried until it succeeds; never throws.</summary>
    private async Task ResyncAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset cut;
        lock (_lock)
        {
            cut = _cutSince ?? _started;
            _cutSince = null;
        }
        // Listening again first: a label announced from now on is heard, one announced before is in the store.
        await redis.RouteLabels.CatchUpAsync(c => LearnSinceAsync(cut - Overlap, c), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Learns the labels of the feedback rows given since <paramref name="since"/> that this node lacks; false when the store or Redis failed mid-way (learning is idempotent per request, so a retry reads the same rows again).</summary>
    private async Task<bool> LearnSinceAsync(DateTimeOffset since, CancellationToken cancellationToken)
    {
        if (ledger is null)
        {
            return true;
        }
        try
        {
            var labels = new Dictionary<string, float>(StringComparer.Ordinal);
            await foreach (var row in ledger.ReadFeedbackAsync(since, null, cancellationToken).ConfigureAwait(false))
            {
                // The first row that says something labels the request, as when it arrived live (RouteFeedback.Restore).
                if (!labels.ContainsKey(row.RequestId) && RouteFeedback.LabelOf(row.Score, row.Outcome) is { } label)
                {
                    labels[row.RequestId] = label;
                }
            }
            List<string> missing = [.. labels.Keys.Where(id => !feedback.Holds(id))];
            var restored = 0;
            if (missing.Count > 0 && examples is not null)
            {
                foreach (var example in await examples.ReadRouteExamplesAsync(missing, cancellationToken).ConfigureAwait(false))
                {
                    restored += feedback.Add(example, labels[example.RequestId]) ? 1 : 0;
                }
            }
            var unresolved = 0;
            foreach (var id in missing)
            {
                if (!feedback.Holds(id))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    await LearnAsync(id, labels[id]).ConfigureAwait(false);
                    unresolved++;
                }
            }
            LogResynced(logger, labels.Count, restored, unresolved);
            return true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception error) when (error is not OutOfMemoryException)
        {
            LogResyncFailed(logger, error.Message);
            return false;
        }
    }

    private async Task SaveAsync(RouteExample example)
    {
        if (examples is null)
        {
            return;
        }
        try
        {
            await examples.SaveRouteExampleAsync(example).ConfigureAwait(false);
        }
        catch (Exception error) when (error is not OutOfMemoryException)
        {
            // The label is in every node's memory already; only a restart before the store is back loses it.
            LogNotStored(logger, example.RequestId, error.Message);
        }
    }

    private static float[]? Decode(string base64)
    {
        var bytes = new byte[base64.Length * 3 / 4];
        if (!Convert.TryFromBase64String(base64, bytes, out var written) || written % sizeof(float) != 0 || written == 0)
        {
            return null;
        }
        return MemoryMarshal.Cast<byte, float>(bytes.AsSpan(0, written)).ToArray();
    }

    private static string? DecodeId(string base64)
    {
        var bytes = new byte[base64.Length * 3 / 4];
        return Convert.TryFromBase64String(base64, bytes, out var written) && written > 0 ? Encoding.UTF8.GetString(bytes, 0, written) : null;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not tell the other nodes of a router label (Redis: {Reason}); they learn it when they resync or restart")]
    private static partial void LogNotAnnounced(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not store the router example of request {RequestId} ({Reason}); it is learned until the next restart")]
    private static partial void LogNotStored(ILogger logger, string requestId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Router labels resynced after a Redis reconnect: {Rows} labelled feedback rows read, {Restored} labels restored from the store, {Learned} learned or asked for")]
    private static partial void LogResynced(ILogger logger, int rows, int restored, int learned);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not resync router labels after a Redis reconnect ({Reason}); trying again shortly")]
    private static partial void LogResyncFailed(ILogger logger, string reason);
}
