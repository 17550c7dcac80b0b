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
        queue.OnMessage(message => changed(message.Message.ToString()));
        return new Subscription(queue);
    }

    private sealed class Subscription(ChannelMessageQueue queue) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await queue.UnsubscribeAsync().ConfigureAwait(false);
            }
            catch (Exception error) when (RedisBudgets.IsUnavailable(error))
            {
                // Redis away: the subscription went with the connection.
            }
        }
    }
}
