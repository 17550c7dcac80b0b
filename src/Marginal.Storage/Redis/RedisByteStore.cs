using StackExchange.Redis;

namespace Marginal.Storage.Redis;

/// <summary>
/// Bytes by key with a time to live, shared by every node: the exact response cache's backing store. A cache is an
/// optimisation, so Redis unreachable reads as a miss and a write is dropped; never an error. <paramref name="reachability"/>,
/// when given, hears of each outage (logged once). Thread-safe.
/// </summary>
public sealed class RedisByteStore(IDatabase database, string prefix = "marginal", RedisReachability? reachability = null)
{
    private RedisKey Key(string key) => $"{prefix}:bytes:{key}";

    /// <summary>The value stored under <paramref name="key"/>, or null when absent, expired or Redis is unreachable.</summary>
    public async Task<byte[]?> GetAsync(string key)
    {
        try
        {
            var value = await database.StringGetAsync(Key(key)).ConfigureAwait(false);
            reachability?.Succeeded();
            return value.IsNull ? null : (byte[])value!;
        }
        catch (Exception error) when (RedisReachability.IsUnavailable(error))
        {
            reachability?.Failed(error);
            return null;
        }
    }

    /// <summary>Stores <paramref name="value"/> for <paramref name="timeToLive"/>; false when Redis was unreachable (nothing stored).</summary>
    public async Task<bool> SetAsync(string key, ReadOnlyMemory<byte> value, TimeSpan timeToLive)
    {
        try
        {
            var stored = await database.StringSetAsync(Key(key), value, timeToLive).ConfigureAwait(false);
            reachability?.Succeeded();
            return stored;
        }
        catch (Exception error) when (RedisReachability.IsUnavailable(error))
        {
            reachability?.Failed(error);
            return false;
        }
    }

    /// <summary>Removes <paramref name="key"/>; false when it was absent or Redis was unreachable.</summary>
    public async Task<bool> RemoveAsync(string key)
    {
        try
        {
            return await database.KeyDeleteAsync(Key(key)).ConfigureAwait(false);
        }
        catch (Exception error) when (RedisReachability.IsUnavailable(error))
        {
            reachability?.Failed(error);
            return false;
        }
    }
}
