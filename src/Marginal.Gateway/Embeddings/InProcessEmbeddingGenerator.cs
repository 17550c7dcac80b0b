using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Embeddings;

/// <summary>
/// An embedding model run in-process by ONNX Runtime on the CPU, with no network. Vectors come back L2-normalised, so
/// a dot product is their cosine similarity. Thread-safe (ONNX Runtime sessions are). Loading a model takes a few
/// hundred milliseconds, so each concrete model offers one shared instance.
/// </summary>
public abstract class InProcessEmbeddingGenerator(string providerName, string modelId, int dimensions) : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly EmbeddingGeneratorMetadata _metadata = new(providerName, null, modelId, dimensions);

    /// <summary>The vector length of this model.</summary>
    public int VectorLength => dimensions;

    /// <summary>The normalised embedding of each of <paramref name="texts"/>, in order.</summary>
    public float[][] Embed(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return texts.Count == 0 ? [] : EmbedCore(texts as string[] ?? [.. texts], cancellationToken);
    }

    /// <summary>The normalised embedding of <paramref name="text"/>.</summary>
    public float[] Embed(string text, CancellationToken cancellationToken = default) => Embed([text], cancellationToken)[0];

    /// <summary>Runs the model on a non-empty batch.</summary>
    protected abstract float[][] EmbedCore(string[] texts, CancellationToken cancellationToken);

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var vectors = Embed([.. values], cancellationToken);
        var result = new GeneratedEmbeddings<Embedding<float>>(vectors.Length);
        foreach (var vector in vectors)
        {
            result.Add(new Embedding<float>(vector) { ModelId = modelId });
        }
        return Task.FromResult(result);
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(EmbeddingGeneratorMetadata) ? _metadata
        : serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the model's ONNX session, unless this is the process-wide shared instance.</summary>
    protected abstract void Dispose(bool disposing);
}
