using System.Collections.Concurrent;
using StackExchange.Redis;

namespace Marginal.Storage.Redis;

/// <summary>
/// Tells every node that configuration changed (a key revoked, a plan or budget edited), over Redis pub/sub. A message
/// is a hint to reload from the shared store, not the change itself: pub/sub delivers at most once and only to nodes
/// connected at that moment, so a node also reloads on reconnect. Other announcements between nodes (router labels,
/// semantic cache entries) travel the same way on a <paramref name="channel"/> of their own. Thread-safe.
/// </summary>
public sealed class RedisConfigChanges(IConnectionMultiplexer connection, string prefix = "marginal", string channel = "config")
{
    // A probe is a message this process sends itself to learn that its subscription is live again (ListeningAsync);
    // subscribers never see probes, their own or other nodes'.
    private const string ProbePrefix = "probe ";

    /// <summary>How long <see cref="ListeningAsync"/> waits for its probe unless told otherwise.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    // The longest wait between two tries of CatchUpAsync.
    private static readonly TimeSpan MaxCatchUpWait = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, TaskCompletionSource> _probes = new(StringComparer.Ordinal);

    private RedisChannel Channel => RedisChannel.Literal($"{prefix}:{channel}");

    /// <summary>Announces a change of <paramref name="what"/> (e.g. <c>keys</c>); returns how many nodes heard it.</summary>
    public Task<long> PublishAsync(string what) => connection.GetSubscriber().PublishAsync(Channel, what);

    /// <summary>
    /// Calls <paramref name="changed"/> with each announcement until the returned handle is disposed (which succeeds
    /// when Redis is away: there is nothing to unsubscribe from then).
    /// </summary>
    public async Task<IAsyncDisposable> SubscribeAsync(Action<string> changed)
    {
        ArgumentNullException.ThrowIfNull(changed);
        var queue = await connection.GetSubscriber().SubscribeAsync(Channel).ConfigureAwait(false);
        queue.OnMessage(message =>
        {
            var text = message.Message.ToString();
            if (!text.StartsWith(ProbePrefix, StringComparison.Ordinal))
            {
                changed(text);
            }
            else if (_probes.TryRemove(text, out var heard))
            {
                heard.TrySetResult();
            }
        });
        return new Subscription(queue);
    }

    /// <summary>
    /// Publishes a probe on the channel and waits until this process's own subscription hears it: true then, so any
    /// message published from now on reaches this node, and state read from Redis or the shared store afterwards misses
    /// nothing announced meanwhile. False when the probe was not heard within <paramref name="timeout"/> or Redis is unreachable.
    /// </summary>
    public async Task<bool> ListeningAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var probe = ProbePrefix + Guid.NewGuid().ToString("N");
        var heard = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _probes[probe] = heard;
        try
        {
            await PublishAsync(probe).ConfigureAwait(false);
            await heard.Task.WaitAsync(timeout ?? ProbeTimeout, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception error) when (error is RedisException or TimeoutException)
        {
            return false;
        }
        finally
        {
            _probes.TryRemove(probe, out _);
        }
    }

    /// <summary>
    /// Runs <paramref name="catchUp"/> (reading from Redis or the shared store what was announced while this process was
    /// cut off; false when that failed) once <see cref="ListeningAsync"/> is true, and again until both succeed. After a
    /// reconnect the subscription connection can come back before the one that carries commands, and commands fail at
    /// once until that one does too; a single try would then miss. A try's probe waits 1 s, doubling to
    /// <see cref="ProbeTimeout"/>; tries are 0.25 s apart, doubling to 2 s. Ends when <paramref name="cancellationToken"/>
    /// is cancelled; never throws.
    /// </summary>
    public async Task CatchUpAsync(Func<CancellationToken, Task<bool>> catchUp, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(catchUp);
        var probe = TimeSpan.FromSeconds(1);
        var wait = TimeSpan.FromMilliseconds(250);
        try
        {
            while (!(await ListeningAsync(probe, cancellationToken).ConfigureAwait(false) && await catchUp(cancellationToken).ConfigureAwait(false)))
            {
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                probe = TimeSpan.FromTicks(Math.Min(probe.Ticks * 2, ProbeTimeout.Ticks));
                wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, MaxCatchUpWait.Ticks));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private sealed class Subscription(ChannelMessageQueue queue) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await queue.UnsubscribeAsync().ConfigureAwait(false);
            }
            catch (Exception error) when (RedisReachability.IsUnavailable(error))
            {
                // Redis away: the subscription went with the connection.
            }
        }
    }
}
