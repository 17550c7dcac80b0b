using Marginal.Core.Caching;

namespace Marginal.Gateway.Caching;

/// <summary>
/// A semantic cache entry as the nodes of a cluster share it: where it is looked up (<paramref name="Scope"/>, which
/// carries the tenant), the prompt it answered, its unit-length vector from embeddings <paramref name="Embeddings"/>
/// (<c>cache.semantic.embeddings</c>), the key of its answer in the shared answer store, and when it expires.
/// </summary>
public sealed record SharedSemanticEntry(string Scope, string Prompt, float[] Vector, string Embeddings, string AnswerKey, DateTimeOffset Expires);

/// <summary>
/// Shares semantic cache entries between the nodes of a cluster (<c>redis:</c>): each node keeps its own in-process
/// index for lookups, and an entry added on one node is added to every other node's index, its answer fetched from
/// the shared store on a hit. Thread-safe.
/// </summary>
public interface ISharedSemanticEntries
{
    /// <summary>Stores <paramref name="answer"/> under <paramref name="entry"/>'s answer key and tells the other nodes of the entry.</summary>
    ValueTask ShareAsync(SharedSemanticEntry entry, CachedAnswer answer, CancellationToken cancellationToken);

    /// <summary>The answer an entry from another node points to; null once it expired or was evicted.</summary>
    ValueTask<CachedAnswer?> AnswerAsync(string answerKey, CancellationToken cancellationToken);

    /// <summary>
    /// Hands <paramref name="added"/> every live entry from other nodes: those that arrived before this call (the entries
    /// still live when this node started among them), then each new one as it arrives.
    /// </summary>
    void Listen(Action<SharedSemanticEntry> added);
}
