using Marginal.Server.Hosting;
using Marginal.Storage.Redis;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Marginal.Server.Cluster;

/// <summary>
/// Tells the other nodes what changed here and acts on what changed there, over <see cref="RedisConfigChanges"/>:
/// a key revoked through the admin API is forgotten by every node's key cache at once (so it is refused from the next
/// request on, on any node), and a reload of this node's config file makes the others reload theirs. A message is
/// <c>key &lt;node&gt; &lt;key id&gt;</c> or <c>config &lt;node&gt;</c>; a node ignores its own. Pub/sub reaches only the
/// nodes connected at that moment, so a node whose connection comes back forgets every cached key and reloads its
/// config, as if it had heard everything it missed.
/// </summary>
internal sealed partial class ClusterChanges(ClusterRedis redis, KeyAuthentication? keys, ConfigWatcher? watcher, ILogger<ClusterChanges> logger) : IHostedService
{
    private readonly string _node = Guid.NewGuid().ToString("N")[..12];
    private IAsyncDisposable? _subscription;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = await redis.Changes.SubscribeAsync(Heard).ConfigureAwait(false);
        redis.Connection.ConnectionRestored += Restored;
        if (watcher is not null)
        {
            watcher.Reloaded += ReloadedHere;
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        redis.Connection.ConnectionRestored -= Restored;
        if (watcher is not null)
        {
            watcher.Reloaded -= ReloadedHere;
        }
        if (_subscription is not null)
        {
            await _subscription.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Announces that key <paramref name="id"/> was revoked here; false when Redis could not be reached (the other nodes then refuse it within <see cref="KeyAuthentication.CacheFor"/>).</summary>
    public Task<bool> KeyRevokedAsync(string id) => PublishAsync($"key {_node} {id}");

    private async void ReloadedHere() => await PublishAsync($"config {_node}").ConfigureAwait(false);

    private async Task<bool> PublishAsync(string message)
    {
        try
        {
            await redis.Changes.PublishAsync(message).ConfigureAwait(false);
            return true;
        }
        catch (Exception error) when (RedisReachability.IsUnavailable(error))
        {
            LogNotAnnounced(logger, message.Split(' ')[0], error.Message);
            return false;
        }
    }

    private void Heard(string message)
    {
        var parts = message.Split(' ', 3);
        if (parts.Length < 2 || parts[1] == _node)
        {
            return;
        }
        switch (parts[0])
        {
            case "key" when parts.Length == 3:
                keys?.Forget(parts[2]);
                break;
            case "config":
                watcher?.Reload(announce: false);
                break;
        }
    }

    private void Restored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Subscription)
        {
            return;
        }
        keys?.ForgetAll();
        watcher?.Reload(announce: false);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not tell the other nodes of a {Change} change (Redis: {Reason}); they pick it up within their cache time")]
    private static partial void LogNotAnnounced(ILogger logger, string change, string reason);
}
