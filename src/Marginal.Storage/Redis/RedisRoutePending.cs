using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Marginal.Core.Ledger;
using Marginal.Core.Routing;
using StackExchange.Redis;

namespace Marginal.Storage.Redis;

/// <summary>
/// The prompt embeddings of requests the learned router sent to the weak model, kept in Redis under
/// <c>&lt;prefix&gt;:route-pending:&lt;request id&gt;</c> for <c>redis.route_feedback_window</c>, so that feedback on
/// any node, and after the routing node restarted, can still become a label (the server's <c>ClusterRouteFeedback</c>). One
/// fire-and-forget SET with a time to live per such request; the value is the alias's length (2 bytes, little-endian),
/// the alias in UTF-8 and the embedding as little-endian floats (1,536 bytes for MiniLM's 384 dimensions; about 1.97 KB
/// of Redis memory per entry with its key and expiry, measured on Redis 7.0, docs/benchmarks.md). The first
/// node to learn a request's label takes the entry (GETDEL), so it is learned from here once. Redis unreachable: a
/// write is dropped and a read finds nothing (logged once per outage). Thread-safe.
/// </summary>
public sealed class RedisRoutePending(IDatabase database, string prefix, TimeSpan window, RedisReachability reachability) : ISharedRoutePending
{
    private RedisKey Key(string requestId) => $"{prefix}:route-pending:{requestId}";

    public void Keep(RouteExample request)
    {
        var alias = Encoding.UTF8.GetBytes(request.Alias);
        var vector = MemoryMarshal.AsBytes(request.Embedding.AsSpan());
        var value = new byte[sizeof(ushort) + alias.Length + vector.Length];
        BinaryPrimitives.WriteUInt16LittleEndian(value, (ushort)alias.Length);
        alias.CopyTo(value.AsSpan(sizeof(ushort)));
        vector.CopyTo(value.AsSpan(sizeof(ushort) + alias.Length));
        try
        {
            database.StringSet(Key(request.RequestId), value, window, flags: CommandFlags.FireAndForget);
        }
        catch (Exception error) when (error is RedisException or TimeoutException or ObjectDisposedException)
        {
            reachability.Failed(error);
        }
    }

    /// <summary>Takes the request's embedding out of Redis; null when it is not there (never routed to the weak model, taken, expired) or Redis is unreachable.</summary>
    public async Task<RouteExample?> TakeAsync(string requestId)
    {
        try
        {
            var value = await database.StringGetDeleteAsync(Key(requestId)).ConfigureAwait(false);
            reachability.Succeeded();
            return value.IsNull ? null : Read(requestId, (byte[])value!);
        }
        catch (Exception error) when (error is RedisException or TimeoutException or ObjectDisposedException)
        {
            reachability.Failed(error);
            return null;
        }
    }

    /// <summary>Drops the entry of a request whose label was learned (fire-and-forget).</summary>
    public void Forget(string requestId)
    {
        try
        {
            database.KeyDelete(Key(requestId), CommandFlags.FireAndForget);
        }
        catch (Exception error) when (error is RedisException or TimeoutException or ObjectDisposedException)
        {
            reachability.Failed(error);
        }
    }

    /// <summary>The entry in <paramref name="value"/>; null when it does not read back (written by another version).</summary>
    private static RouteExample? Read(string requestId, byte[] value)
    {
        if (value.Length < sizeof(ushort))
        {
            return null;
        }
        var aliasLength = BinaryPrimitives.ReadUInt16LittleEndian(value);
        var vectorBytes = value.Length - sizeof(ushort) - aliasLength;
        if (vectorBytes <= 0 || vectorBytes % sizeof(float) != 0)
        {
            return null;
        }
        var alias = Encoding.UTF8.GetString(value, sizeof(ushort), aliasLength);
        return new RouteExample(requestId, alias, MemoryMarshal.Cast<byte, float>(value.AsSpan(sizeof(ushort) + aliasLength)).ToArray());
    }
}
