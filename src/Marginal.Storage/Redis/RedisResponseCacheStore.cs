using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Marginal.Core.Caching;
using Microsoft.Extensions.AI;

namespace Marginal.Storage.Redis;

/// <summary>
/// The exact response cache shared by every node, over <see cref="RedisByteStore"/>: an answer stored through one node
/// is a hit on any other. An entry is the <see cref="CachedAnswer"/> as JSON, a streamed answer with its updates in
/// order, so a replay on another node has the same chunks, ids and finish reason. Keys already carry the tenant
/// (the gateway's <c>ResponseCacheKey</c>), so tenants stay apart. Redis evicts and expires entries (its own maxmemory
/// policy, the entry's time to live). Redis unreachable or an entry that does not read back: a miss, and a write is
/// dropped; <see cref="RedisByteStore"/> logs the outage once. Thread-safe.
/// </summary>
public sealed class RedisResponseCacheStore(RedisByteStore bytes) : IResponseCacheStore
{
    // The envelope's contract is source-generated here; the M.E.AI types inside (ChatResponse, updates, contents with
    // their "$type" discriminators) take M.E.AI's own source-generated contracts.
    private static readonly JsonSerializerOptions Json = new()
    {
        TypeInfoResolver = JsonTypeInfoResolver.Combine(AIJsonUtilities.DefaultOptions.TypeInfoResolver, CachedAnswerJson.Default),
    };

    private static readonly JsonTypeInfo<CachedAnswerEntry> EntryInfo = (JsonTypeInfo<CachedAnswerEntry>)Json.GetTypeInfo(typeof(CachedAnswerEntry));

    public async ValueTask<CachedAnswer?> GetAsync(string key, CancellationToken cancellationToken)
    {
        var found = await bytes.GetAsync(key).ConfigureAwait(false);
        if (found is null)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(found, EntryInfo)?.ToAnswer();
        }
        catch (JsonException)
        {
            // Written by another version, or damaged: a miss, and the next answer overwrites it.
            return null;
        }
    }

    public async ValueTask SetAsync(string key, CachedAnswer answer, TimeSpan ttl, CancellationToken cancellationToken)
    {
        var entry = new CachedAnswerEntry(answer.Response, answer.Updates is null ? null : [.. answer.Updates], answer.ServedModel, answer.Provider, answer.CostUsd);
        await bytes.SetAsync(key, JsonSerializer.SerializeToUtf8Bytes(entry, EntryInfo), ttl).ConfigureAwait(false);
    }
}

/// <summary>A <see cref="CachedAnswer"/> as stored in Redis.</summary>
internal sealed record CachedAnswerEntry(ChatResponse Response, List<ChatResponseUpdate>? Updates, string? ServedModel, string? Provider, decimal? CostUsd)
{
    public CachedAnswer ToAnswer() => new(Response, Updates, ServedModel, Provider, CostUsd);
}

[JsonSerializable(typeof(CachedAnswerEntry))]
internal sealed partial class CachedAnswerJson : JsonSerializerContext;
