using Marginal.Core.Pricing;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Providers;

/// <summary>
/// One configured provider, ready to call. <see cref="Chat"/> takes the upstream model id in
/// <see cref="ChatOptions.ModelId"/>; <see cref="Embeddings"/> is null when the provider serves none.
/// Thread-safe; shared by every request that reads the snapshot it belongs to.
/// </summary>
public sealed class UpstreamProvider(string name, string kind, IChatClient chat, Func<string, IEmbeddingGenerator<string, Embedding<float>>>? embeddings) : IDisposable
{
    public string Name { get; } = name;

    /// <summary><c>openai</c>, <c>anthropic</c> or <c>local</c>.</summary>
    public string Kind { get; } = kind;

    /// <summary>Where its capacity comes from: <see cref="CapacityKind.Owned"/> for a local model, else <see cref="CapacityKind.Api"/>.</summary>
    public CapacityKind Capacity { get; init; } = CapacityKind.Api;

    public IChatClient Chat { get; } = chat;

    /// <summary>An owned pool's spill-over bound: a request that would wait longer for a slot goes to the model's next fallback.</summary>
    public TimeSpan? MaxQueueWait { get; init; }

    /// <summary>Makes an embedding generator for an upstream model id, or null when the provider has no embeddings API.</summary>
    public Func<string, IEmbeddingGenerator<string, Embedding<float>>>? Embeddings { get; } = embeddings;

    public void Dispose() => Chat.Dispose();
}
