using Marginal.Gateway.Routing.Learning;
using Marginal.Lab.Routing;

namespace Marginal.Gateway.Tests.Routing;

public sealed class MfScorerTests : IDisposable
{
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"marginal-router-mf-{Guid.NewGuid():N}.json");

    public void Dispose() => File.Delete(_file);

    /// <summary>
    /// Random unit vectors in the first 16 dimensions; a prompt with a positive first coordinate needs the strong model
    /// (only it is right), the others are answered by both. Every direction of the subspace has the same spread, so the
    /// rule is the only thing that singles out the first axis.
    /// </summary>
    private static (RoutingExample[] Examples, float[][] Vectors) Separable(int count, int seed)
    {
        var random = new Random(seed);
        var examples = new RoutingExample[count];
        var vectors = new float[count][];
        for (var i = 0; i < count; i++)
        {
            var v = new float[384];
            for (var j = 0; j < 16; j++)
            {
                v[j] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
            }
            var norm = MathF.Sqrt(v.Sum(x => x * x));
            vectors[i] = [.. v.Select(x => x / norm)];
            examples[i] = new RoutingExample($"prompt {i}", "d", WeakCorrect: vectors[i][0] <= 0, StrongCorrect: true);
        }
        return (examples, vectors);
    }

    // d = 8 and 200 epochs: 300 prompts make only 5 mini-batches an epoch, too few steps at the default 30.
    private static MfScorer Fit(RoutingExample[] examples, float[][] vectors) =>
        MfScorer.Train([.. vectors.Select(v => (float[])[.. v, 0f])], [.. examples.Select(e => (e.Gain + 1) / 2)], LengthTerm.None, dimensions: 8, l2: 1e-4, seed: 1, epochs: 200);

    [Fact]
    public void Train_SeparableRule_SendsStrongOnlyPromptsFirst()
    {
        var (train, trainVectors) = Separable(300, seed: 1);
        var (test, testVectors) = Separable(200, seed: 2);

        var evaluation = RouterTrainer.Evaluate(Fit(train, trainVectors), test, testVectors);

        // Weak accuracy about ½, strong 1: a perfect ranking has APGR (1 + weak) / 2, about 0.75; chance 0.5.
        Assert.InRange(evaluation.Apgr, (1 + evaluation.WeakAccuracy) / 2 - 0.03, 1);
    }

    [Fact]
    public void Train_ShuffledLabels_RanksNoBetterThanChance()
    {
        var (train, trainVectors) = Separable(300, seed: 1);
        var (test, testVectors) = Separable(200, seed: 2);
        var labels = train.Select(e => e.WeakCorrect).ToArray();
        new Random(7).Shuffle(labels);
        var shuffled = train.Select((e, i) => e with { WeakCorrect = labels[i] }).ToArray();

        var evaluation = RouterTrainer.Evaluate(Fit(shuffled, trainVectors), test, testVectors);

        // The same prompts with their labels shuffled: nothing left to learn, so about the 0.5 of a random ranking.
        Assert.InRange(evaluation.Apgr, 0.4, 0.6);
    }

    [Fact]
    public void Train_SameSeed_SameScores()
    {
        var (train, vectors) = Separable(60, seed: 3);

        var first = RouterTrainer.Train("mf", train, vectors, seed: 5);
        var second = RouterTrainer.Train("mf", train, vectors, seed: 5);

        Assert.Equal(vectors.Select(v => first.Score(v, 8)), vectors.Select(v => second.Score(v, 8)));
    }

    [Fact]
    public void Score_HandMadeFactors_IsTheWinProbability()
    {
        // d = 1: W = e₀ (length input weight 0.5), b = 0.5, v_strong = 1, v_weak = −1, c = 2 → u = 2 × (1 − (−1)) = 4.
        var row = TestVectors.Unit(0).Append(0.5f).ToArray();
        var scorer = new MfScorer([row], [0.5f], [1f], [-1f], [2f]) { Length = new LengthTerm(1, Math.Log(11), 1) };

        // x = e₀, a 10-character prompt (standardised length 0): σ(4 × (1 + 0.5)).
        Assert.Equal(1 / (1 + Math.Exp(-6)), scorer.Score(TestVectors.Unit(0), 10), 9);
        // x = e₁, a 6-character prompt (standardised length ln 7 − ln 11): σ(4 × (0.5 × (ln 7 − ln 11) + 0.5)).
        Assert.Equal(1 / (1 + Math.Exp(-4 * (0.5 * (Math.Log(7) - Math.Log(11)) + 0.5))), scorer.Score(TestVectors.Unit(1), 6), 6);
    }

    [Fact]
    public void SaveLoad_Mf_ScoresTheSameAfterwards()
    {
        var (train, vectors) = Separable(60, seed: 4);
        var scorer = (MfScorer)RouterTrainer.Train("mf", train, vectors);

        RouterModelFile.Save(_file, scorer, new RouterModelFile.Header(0.6, "test"));
        var (loaded, header) = RouterModelFile.Load(_file);

        var mf = Assert.IsType<MfScorer>(loaded);
        Assert.Equal((scorer.Dimensions, 0.6), (mf.Dimensions, header.SuggestedThreshold));
        Assert.Equal(scorer.Length, mf.Length);
        Assert.All(vectors.Select((v, i) => (scorer.Score(v, 5 + i), mf.Score(v, 5 + i))), p => Assert.Equal(p.Item1, p.Item2, 6));
    }

    [Fact]
    public void Load_MfProjectionRowTooShort_NamesTheField()
    {
        File.WriteAllText(_file, """
            {"format":"marginal-router","version":1,"embedding":"all-MiniLM-L6-v2","dimensions":384,"suggested_threshold":0.5,
             "trained_on":"x","kind":"mf","length":{"weight":1,"mean":0,"scale":1},"projection":[[1,2,3]],
             "projection_bias":[0],"strong":[1],"weak":[-1],"classifier":[1]}
            """);

        var error = Assert.Throws<RoutingDataException>(() => RouterModelFile.Load(_file));

        Assert.Equal($"{_file}: 'projection' must be an array of 1 arrays of 385 numbers", error.Message);
    }

    [Fact]
    public void Load_MfWeakOfWrongLength_NamesTheField()
    {
        var row = string.Join(',', Enumerable.Repeat("0", 385));
        File.WriteAllText(_file, $$"""
            {"format":"marginal-router","version":1,"embedding":"all-MiniLM-L6-v2","dimensions":384,"suggested_threshold":0.5,
             "trained_on":"x","kind":"mf","length":{"weight":1,"mean":0,"scale":1},"projection":[[{{row}}],[{{row}}]],
             "projection_bias":[0,0],"strong":[1,0],"weak":[-1],"classifier":[1,1]}
            """);

        var error = Assert.Throws<RoutingDataException>(() => RouterModelFile.Load(_file));

        Assert.Equal($"{_file}: 'weak' must be an array of 2 numbers", error.Message);
    }
}
