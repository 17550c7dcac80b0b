using Marginal.Gateway.Configuration;
using Marginal.Storage.Redis;

namespace Marginal.Server.Cluster;

/// <summary>Announcements to the running nodes from a process that is not one (the CLI), over the same channel as <see cref="ClusterChanges"/>.</summary>
public static class ClusterNotices
{
    /// <summary>
    /// Tells every node sharing <paramref name="config"/>'s Redis that key <paramref name="id"/> was revoked, so each
    /// refuses it from its next request. False when Redis could not be reached (the nodes then refuse it within their
    /// key cache time).
    /// </summary>
    public static async Task<bool> KeyRevokedAsync(RedisConfig config, string id)
    {
        try
        {
            await using var redis = ClusterRedis.Connect(config);
            await redis.Changes.PublishAsync($"key cli-{Environment.ProcessId} {id}").ConfigureAwait(false);
            return true;
        }
        catch (ConfigException)
        {
            return false;
        }
        catch (Exception error) when (RedisReachability.IsUnavailable(error))
        {
            return false;
        }
    }
}
