using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Marginal.Gateway.Caching;

/// <summary>
/// Exact nearest-neighbour search over normalised vectors in two passes: a SIMD scan of int8 codes (each vector scaled
/// by 127 / max|x|, a quarter of the float bytes) keeps the <see cref="Rerank"/> best rows, and those are rescored with
/// float32 dot products, so the similarity returned is exact. Chosen over the float32 scan and USearch's HNSW by
/// measurement (docs/benchmarks.md, "Response cache": about 4× faster than the float scan at equal recall; the HNSW
/// graph was faster still but lost near neighbours). Removal moves the last row into the gap. Not thread-safe: the owner locks.
/// </summary>
public sealed class VectorIndex(int dimensions)
{
    /// <summary>Candidates rescored in float32. An int8 code's dot product errs by far less than the gap between a
    /// paraphrase (cosine ≥ 0.8) and the next entry, so the true nearest is among the best few.</summary>
    public const int Rerank = 8;

    private float[] _rows = new float[dimensions * 64];
    private sbyte[] _codes = new sbyte[dimensions * 64];
    private float[] _scales = new float[64];
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
            Array.Resize(ref _scales, Count * 2);
            Array.Resize(ref _rows, Count * 2 * dimensions);
            Array.Resize(ref _codes, Count * 2 * dimensions);
        }
        vector.CopyTo(_rows.AsSpan(Count * dimensions, dimensions));
        _scales[Count] = Quantise(vector, _codes.AsSpan(Count * dimensions, dimensions));
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
            _codes.AsSpan(last * dimensions, dimensions).CopyTo(_codes.AsSpan(row * dimensions, dimensions));
            _scales[row] = _scales[last];
            _ids[row] = _ids[last];
            _rowOf[_ids[row]] = row;
        }
        Count = last;
        return true;
    }

    /// <summary>The most similar entry (cosine, as the vectors are normalised) or null when the index is empty.</summary>
    public (long Id, float Similarity)? Nearest(ReadOnlySpan<float> query) => NearestTwo(query) is var (best, _) ? best : null;

    /// <summary>
    /// The most similar entry and the runner-up (null when the index holds one entry), both with exact cosines; null
    /// when the index is empty. The runner-up comes from the same int8 shortlist of <see cref="Rerank"/> rows, so it is
    /// exact whenever the true second is among them (it is the second of the shortlist otherwise).
    /// </summary>
    public ((long Id, float Similarity) Best, (long Id, float Similarity)? Second)? NearestTwo(ReadOnlySpan<float> query)
    {
        if (Count == 0)
        {
            return null;
        }
        Span<sbyte> code = stackalloc sbyte[dimensions];
        Quantise(query, code);
        Span<int> candidates = stackalloc int[Rerank];
        Span<float> scores = stackalloc float[Rerank];
        candidates.Fill(-1);
        scores.Fill(float.NegativeInfinity);
        var worst = 0;
        var codes = _codes.AsSpan();
        for (var row = 0; row < Count; row++)
        {
            // The query's own scale is the same for every row, so it is left out of the ranking.
            var score = Dot(code, codes.Slice(row * dimensions, dimensions)) * _scales[row];
            if (score > scores[worst])
            {
                scores[worst] = score;
                candidates[worst] = row;
                worst = 0;
                for (var k = 1; k < Rerank; k++)
                {
                    if (scores[k] < scores[worst])
                    {
                        worst = k;
                    }
                }
            }
        }
        int best = -1, second = -1;
        float bestScore = float.NegativeInfinity, secondScore = float.NegativeInfinity;
        var rows = _rows.AsSpan();
        foreach (var row in candidates)
        {
            if (row < 0)
            {
                continue;
            }
            var exact = TensorPrimitives.Dot(query, rows.Slice(row * dimensions, dimensions));
            if (exact > bestScore || (exact == bestScore && row < best))
            {
                (second, secondScore) = (best, bestScore);
                (best, bestScore) = (row, exact);
            }
            else if (exact > secondScore || (exact == secondScore && row < second))
            {
                (second, secondScore) = (row, exact);
            }
        }
        return ((_ids[best], bestScore), second < 0 ? null : (_ids[second], secondScore));
    }

    /// <summary>The stored vector of <paramref name="id"/>; empty when absent. Valid until the next add or remove.</summary>
    public ReadOnlySpan<float> VectorOf(long id) =>
        _rowOf.TryGetValue(id, out var row) ? _rows.AsSpan(row * dimensions, dimensions) : [];

    /// <summary>Scales <paramref name="vector"/> to unit length in place (a configured endpoint may not normalise).</summary>
    public static void Normalise(Span<float> vector)
    {
        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }
    }

    /// <summary>Writes round(x · 127 / max|x|) into <paramref name="code"/>; returns the factor back, max|x| / 127.</summary>
    private static float Quantise(ReadOnlySpan<float> vector, Span<sbyte> code)
    {
        // MaxMagnitude returns the element of largest magnitude with its sign.
        var max = MathF.Abs(TensorPrimitives.MaxMagnitude(vector));
        if (!(max > 0))
        {
            code.Clear();
            return 0;
        }
        var scale = 127f / max;
        for (var i = 0; i < vector.Length; i++)
        {
            code[i] = (sbyte)MathF.Round(vector[i] * scale);
        }
        return max / 127f;
    }

    /// <summary>Σ a·b over int8 codes: widened to int16 and multiplied pairwise into int32 lanes (AVX-512 or AVX2).</summary>
    private static int Dot(ReadOnlySpan<sbyte> a, ReadOnlySpan<sbyte> b)
    {
        var i = 0;
        var total = 0;
        ref var ra = ref MemoryMarshal.GetReference(a);
        ref var rb = ref MemoryMarshal.GetReference(b);
        if (Avx512BW.IsSupported)
        {
            var sum = Vector512<int>.Zero;
            for (; i + 64 <= a.Length; i += 64)
            {
                var (aLow, aHigh) = Vector512.Widen(Vector512.LoadUnsafe(ref ra, (nuint)i));
                var (bLow, bHigh) = Vector512.Widen(Vector512.LoadUnsafe(ref rb, (nuint)i));
                sum = Avx512F.Add(sum, Avx512BW.MultiplyAddAdjacent(aLow, bLow));
                sum = Avx512F.Add(sum, Avx512BW.MultiplyAddAdjacent(aHigh, bHigh));
            }
            total = Vector512.Sum(sum);
        }
        else if (Avx2.IsSupported)
        {
            var sum = Vector256<int>.Zero;
            for (; i + 32 <= a.Length; i += 32)
            {
                var (aLow, aHigh) = Vector256.Widen(Vector256.LoadUnsafe(ref ra, (nuint)i));
                var (bLow, bHigh) = Vector256.Widen(Vector256.LoadUnsafe(ref rb, (nuint)i));
                sum = Avx2.Add(sum, Avx2.MultiplyAddAdjacent(aLow, bLow));
                sum = Avx2.Add(sum, Avx2.MultiplyAddAdjacent(aHigh, bHigh));
            }
            total = Vector256.Sum(sum);
        }
        for (; i < a.Length; i++)
        {
            total += a[i] * b[i];
        }
        return total;
    }
}
