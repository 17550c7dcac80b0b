using Microsoft.Extensions.AI;

namespace Marginal.Core.Caching;

/// <summary>
/// A finished answer as the cache keeps it: the response, and for a streamed one its updates in order (replayed as
/// they came), plus who served it and what it cost then.
/// </summary>
public sealed record CachedAnswer(ChatResponse Response, IReadOnlyList<ChatResponseUpdate>? Updates, string? ServedModel, string? Provider, decimal? CostUsd)
{
    /// <summary>Rough size for the byte bound: the answer text as UTF-16, streamed or not, plus a fixed overhead.</summary>
    public long SizeBytes { get; } = 256 + 2L * (Response.Text.Length + (Updates?.Sum(u => u.Text.Length) ?? 0));
}

/// <summary>
/// Where exact-cache answers live. Keys already carry the tenant. Implementations keep only finished answers and
/// drop an entry once its time to live has passed: in process (the gateway's <c>MemoryResponseCacheStore</c>) or shared by a cluster (Storage's <c>RedisResponseCacheStore</c>).
/// </summary>
public interface IResponseCacheStore
{
    ValueTask<CachedAnswer?> GetAsync(string key, CancellationToken cancellationToken);

    ValueTask SetAsync(string key, CachedAnswer answer, TimeSpan ttl, CancellationToken cancellationToken);
}
