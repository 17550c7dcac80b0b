namespace Marginal.Gateway.Embeddings;

/// <summary>
/// Several in-process models as one: each part's normalised vector, scaled by 1/√k, laid end to end. The result has
/// unit length and the dot product of two such vectors is the mean of the k parts' cosines, so the vector index and
/// thresholds work unchanged. Costs the sum of the parts' embedding times.
/// </summary>
public sealed class EnsembleEmbeddingGenerator(string modelId, params InProcessEmbeddingGenerator[] parts)
    : InProcessEmbeddingGenerator("ensemble", modelId, parts.Sum(p => p.VectorLength))
{
    private static readonly Lazy<EnsembleEmbeddingGenerator> LazyShared =
        new(() => new EnsembleEmbeddingGenerator("all-MiniLM-L6-v2+snowflake-arctic-embed-xs", MiniLmEmbeddingGenerator.Shared, ArcticXsEmbeddingGenerator.Shared));

    /// <summary>MiniLM and arctic-embed-xs (with its query prefix), sharing their process-wide instances.</summary>
    public static EnsembleEmbeddingGenerator Shared => LazyShared.Value;

    protected override float[][] EmbedCore(string[] texts, CancellationToken cancellationToken) =>
        Combine([.. parts.Select(p => p.Embed(texts, cancellationToken))]);

    /// <summary>Lays the parts' normalised vectors of each text end to end, each scaled by 1/√k (k = parts.Length).</summary>
    public static float[][] Combine(IReadOnlyList<float[][]> parts)
    {
        var scale = 1 / MathF.Sqrt(parts.Count);
        var result = new float[parts[0].Length][];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = new float[parts.Sum(p => p[i].Length)];
            var offset = 0;
            foreach (var part in parts)
            {
                for (var j = 0; j < part[i].Length; j++)
                {
                    result[i][offset + j] = part[i][j] * scale;
                }
                offset += part[i].Length;
            }
        }
        return result;
    }

    /// <summary>The parts are shared instances and are not disposed here.</summary>
    protected override void Dispose(bool disposing)
    {
    }
}
