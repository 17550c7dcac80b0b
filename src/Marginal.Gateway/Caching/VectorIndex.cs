using System.Numerics.Tensors;

namespace Marginal.Gateway.Caching;

/// <summary>
/// Exact nearest-neighbour search over normalised vectors: one contiguous matrix scanned with SIMD dot products
/// (TensorPrimitives). Chosen over an approximate index by measurement (docs/benchmarks.md, "Response cache").
/// Removal moves the last row into the gap. Not thread-safe: the owner locks.
/// </summary>
public sealed class VectorIndex(int dimensions)
{
    private float[] _rows = new float[dimensions * 64];
    private long[] _ids = new long[64];
    private readonly Dictionary<long, int> _rowOf = [];

    public int Count { get; private set; }

    public int Dimensions => dimensions;

    public void Add(long id, ReadOnlySpan<float> vector)
    {
        if (vector.Length != dimensions)
        {
            throw new ArgumentException($"Expected {dimensions} dimensions, got {vector.Length}.", nameof(vector));
        }
        if (Count == _ids.Length)
        {
            Array.Resize(ref _ids, Count * 2);
            Array.Resize(ref _rows, Count * 2 * dimensions);
        }
        vector.CopyTo(_rows.AsSpan(Count * dimensions, dimensions));
        _ids[Count] = id;
        _rowOf[id] = Count;
        Count++;
    }

    public bool Remove(long id)
    {
        if (!_rowOf.Remove(id, out var row))
        {
            return false;
        }
        var last = Count - 1;
        if (row != last)
        {
            _rows.AsSpan(last * dimensions, dimensions).CopyTo(_rows.AsSpan(row * dimensions, dimensions));
            _ids[row] = _ids[last];
            _rowOf[_ids[row]] = row;
        }
        Count = last;
        return true;
    }

    /// <summary>The most similar entry (cosine, as the vectors are normalised) or null when the index is empty.</summary>
    public (long Id, float Similarity)? Nearest(ReadOnlySpan<float> query)
    {
        var best = -1;
        var bestScore = float.NegativeInfinity;
        var rows = _rows.AsSpan();
        for (var i = 0; i < Count; i++)
        {
            var score = TensorPrimitives.Dot(query, rows.Slice(i * dimensions, dimensions));
            if (score > bestScore)
            {
                bestScore = score;
                best = i;
            }
        }
        return best < 0 ? null : (_ids[best], bestScore);
    }

    /// <summary>Scales <paramref name="vector"/> to unit length in place (a configured endpoint may not normalise).</summary>
    public static void Normalise(Span<float> vector)
    {
        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }
    }
}
