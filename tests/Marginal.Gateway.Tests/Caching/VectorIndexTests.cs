using System.Numerics.Tensors;
using Marginal.Gateway.Caching;

namespace Marginal.Gateway.Tests.Caching;

public sealed class VectorIndexTests
{
    private const int Dimensions = 384;

    [Fact]
    public void Nearest_SeededVectors_SameEntryAndSimilarityAsAnExhaustiveFloatSearch()
    {
        var random = new Random(5);
        var stored = Enumerable.Range(0, 3000).Select(_ => Unit(random)).ToArray();
        var index = new VectorIndex(Dimensions);
        for (var i = 0; i < stored.Length; i++)
        {
            index.Add(i, stored[i]);
        }

        for (var q = 0; q < 200; q++)
        {
            // Half the queries are near a stored vector (a paraphrase), half unrelated to any.
            var query = q % 2 == 0 ? Near(stored[random.Next(stored.Length)], random) : Unit(random);
            var expected = Enumerable.Range(0, stored.Length).MaxBy(i => TensorPrimitives.Dot<float>(query, stored[i]));

            var (id, similarity) = index.Nearest(query)!.Value;

            Assert.Equal(expected, id);
            Assert.Equal(TensorPrimitives.Dot<float>(query, stored[expected]), similarity);
        }
    }

    [Fact]
    public void Remove_MiddleEntry_OthersStillFoundAndRemovedOneNever()
    {
        var random = new Random(6);
        var stored = Enumerable.Range(0, 20).Select(_ => Unit(random)).ToArray();
        var index = new VectorIndex(Dimensions);
        for (var i = 0; i < stored.Length; i++)
        {
            index.Add(i, stored[i]);
        }

        Assert.True(index.Remove(7));
        Assert.False(index.Remove(7));

        Assert.Equal(19, index.Count);
        Assert.NotEqual(7, index.Nearest(stored[7])!.Value.Id);
        Assert.Equal(19, index.Nearest(stored[19])!.Value.Id); // the last row, moved into the gap
        Assert.Equal(3, index.Nearest(stored[3])!.Value.Id);
    }

    [Fact]
    public void NearestTwo_ThreeEntries_BestAndRunnerUpWithExactCosines()
    {
        var index = new VectorIndex(2);
        index.Add(1, [1, 0]);
        index.Add(2, [0, 1]);
        index.Add(3, [0.8f, 0.6f]);

        var (best, second) = index.NearestTwo([0.96f, 0.28f])!.Value;

        Assert.Equal((1L, 0.96f), (best.Id, best.Similarity));
        Assert.Equal(3L, second!.Value.Id);
        Assert.Equal(0.936f, second.Value.Similarity, 0.0001f);
    }

    [Fact]
    public void NearestTwo_OneEntry_NoRunnerUp()
    {
        var index = new VectorIndex(2);
        index.Add(7, [1, 0]);

        Assert.Null(index.NearestTwo([1, 0])!.Value.Second);
    }

    [Fact]
    public void Nearest_EmptyIndex_IsNull() => Assert.Null(new VectorIndex(Dimensions).Nearest(new float[Dimensions]));

    private static float[] Unit(Random random)
    {
        var vector = new float[Dimensions];
        for (var d = 0; d < vector.Length; d++)
        {
            vector[d] = (float)(random.NextDouble() - 0.5);
        }
        VectorIndex.Normalise(vector);
        return vector;
    }

    private static float[] Near(float[] origin, Random random)
    {
        var noise = Unit(random);
        var vector = new float[Dimensions];
        for (var d = 0; d < vector.Length; d++)
        {
            vector[d] = origin[d] + (0.48f * noise[d]);
        }
        VectorIndex.Normalise(vector);
        return vector;
    }
}
