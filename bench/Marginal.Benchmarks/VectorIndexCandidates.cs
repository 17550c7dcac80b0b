using System.Runtime.InteropServices;
using System.Numerics.Tensors;
using Cloud.Unum.USearch;
using Marginal.Gateway.Caching;

namespace Marginal.Benchmarks;

/// <summary>A nearest-neighbour index under test: the single most similar stored vector (cosine of unit vectors).</summary>
public interface INearestIndex : IDisposable
{
    string Name { get; }

    void Add(long id, float[] vector);

    (long Id, float Similarity)? Nearest(float[] query);
}

/// <summary>The float32 scan the gateway used before: one SIMD dot product per stored row.</summary>
public sealed class ExactFloatCandidate(int dimensions) : INearestIndex
{
    private readonly List<float> _rows = [];
    private readonly List<long> _ids = [];

    public string Name => "exact f32 scan";

    public void Add(long id, float[] vector)
    {
        _rows.AddRange(vector);
        _ids.Add(id);
    }

    public (long Id, float Similarity)? Nearest(float[] query)
    {
        var rows = CollectionsMarshal.AsSpan(_rows);
        var best = -1;
        var bestScore = float.NegativeInfinity;
        for (var i = 0; i < _ids.Count; i++)
        {
            var score = TensorPrimitives.Dot<float>(query, rows.Slice(i * dimensions, dimensions));
            if (score > bestScore)
            {
                bestScore = score;
                best = i;
            }
        }
        return best < 0 ? null : (_ids[best], bestScore);
    }

    public void Dispose()
    {
    }
}

/// <summary>The gateway's index (<see cref="VectorIndex"/>): an int8 scan with a float32 rerank.</summary>
public sealed class ExactInt8Candidate(int dimensions) : INearestIndex
{
    private readonly VectorIndex _index = new(dimensions);

    public string Name => $"exact i8 scan + f32 rerank of {VectorIndex.Rerank} (VectorIndex)";

    public void Add(long id, float[] vector) => _index.Add(id, vector);

    public (long Id, float Similarity)? Nearest(float[] query) => _index.Nearest(query);

    public void Dispose()
    {
    }
}

/// <summary>USearch's HNSW graph (native), inner-product metric over unit vectors, scalars stored as <c>scalar</c>.</summary>
public sealed class UsearchCandidate(int dimensions, ScalarKind scalar, ulong connectivity, ulong expansionAdd, ulong expansionSearch) : INearestIndex
{
    private readonly USearchIndex _index = new(MetricKind.Ip, scalar, (ulong)dimensions, connectivity, expansionAdd, expansionSearch);

    public string Name => $"usearch hnsw {scalar} M={connectivity} ef_add={expansionAdd} ef={expansionSearch}";

    public void Add(long id, float[] vector) => _index.Add((ulong)id, vector);

    public (long Id, float Similarity)? Nearest(float[] query)
    {
        var found = _index.Search(query, 1, out ulong[] keys, out float[] distances);
        return found == 0 ? null : ((long)keys[0], 1f - distances[0]);
    }

    public void Dispose() => _index.Dispose();
}
