using Marginal.Gateway.Routing.Learning;
using Marginal.Lab.Routing;

namespace Marginal.Gateway.Tests.Routing;

public sealed class RouterModelFileTests : IDisposable
{
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"marginal-router-{Guid.NewGuid():N}.json");

    public void Dispose() => File.Delete(_file);

    [Fact]
    public void SaveLoad_Knn_ScoresTheSameAfterwards()
    {
        var knn = new KnnScorer([TestVectors.Unit(0), TestVectors.Unit(1), TestVectors.Unit(2)], [1f, 0f, -1f], k: 1);

        RouterModelFile.Save(_file, knn, new RouterModelFile.Header(0.25, "test"));
        var (loaded, header) = RouterModelFile.Load(_file);

        Assert.Equal("knn", loaded.Kind);
        Assert.Equal(0.25, header.SuggestedThreshold);
        Assert.Equal([1.0, 0.0, -1.0], new[] { 0, 1, 2 }.Select(i => loaded.Score(TestVectors.Unit(i), 10)));
    }

    [Fact]
    public void SaveLoad_Logistic_ScoresTheSameAfterwards()
    {
        var weights = TestVectors.Unit(3);
        weights[3] = 2;
        var logistic = new LogisticScorer(weights, -1);

        RouterModelFile.Save(_file, logistic, new RouterModelFile.Header(0.5, "test"));
        var (loaded, _) = RouterModelFile.Load(_file);

        Assert.Equal(1 / (1 + Math.Exp(-1)), loaded.Score(TestVectors.Unit(3), 10), 6);
    }

    [Fact]
    public void SaveLoad_BlendWithLengthTerms_ScoresTheSameAfterwards()
    {
        var knn = new KnnScorer([TestVectors.Unit(0), TestVectors.Unit(1)], [1f, -1f], k: 1) { Length = new LengthTerm(0.1, 3, 2) };
        var logistic = new LogisticScorer(TestVectors.Unit(0), 0.5f) { Length = new LengthTerm(0.4, 2, 1) };
        var blend = new BlendScorer(knn, logistic, knnWeight: 0.6, knnScale: 0.5, logitScale: 2);
        var expected = blend.Score(TestVectors.Unit(0), 40);

        RouterModelFile.Save(_file, blend, new RouterModelFile.Header(0.1, "test"));
        var (loaded, _) = RouterModelFile.Load(_file);

        // 0.6 × (1 + 0.1 × (ln 41 − 3) / 2) / 0.5 + 0.4 × (1 + 0.5 + 0.4 × (ln 41 − 2)) / 2
        Assert.Equal(0.6 * (1 + 0.1 * (Math.Log(41) - 3) / 2) / 0.5 + 0.4 * (1.5 + 0.4 * (Math.Log(41) - 2)) / 2, expected, 5);
        Assert.Equal(expected, loaded.Score(TestVectors.Unit(0), 40), 5);
    }

    [Fact]
    public void Load_KnnWithoutVectors_NamesTheField()
    {
        File.WriteAllText(_file, """
            {"format":"marginal-router","version":1,"embedding":"all-MiniLM-L6-v2","dimensions":384,"suggested_threshold":0,
             "trained_on":"x","kind":"knn","length":{"weight":0,"mean":0,"scale":1},"k":1,"gains":[1]}
            """);

        var error = Assert.Throws<RoutingDataException>(() => RouterModelFile.Load(_file));

        Assert.Equal($"{_file}: 'vectors' must be base64 of 1 × 384 half floats", error.Message);
    }

    [Fact]
    public void Load_WrongVersion_NamesTheField()
    {
        File.WriteAllText(_file, """{"format":"marginal-router","version":9}""");

        var error = Assert.Throws<RoutingDataException>(() => RouterModelFile.Load(_file));

        Assert.Equal($"{_file}: format: expected marginal-router version 1", error.Message);
    }

    [Fact]
    public void Train_Logistic_SeparatesPromptsWhereOnlyTheStrongModelWins()
    {
        // Prompts on axis 0 need the strong model (target 1); on axis 1 both models are right (target ½).
        var examples = Enumerable.Range(0, 40).Select(i => new RoutingExample($"p{i}", "d", WeakCorrect: i % 2 == 1, StrongCorrect: true)).ToArray();
        var vectors = Enumerable.Range(0, 40).Select(i => TestVectors.Unit(i % 2)).ToArray();

        var scorer = RouterTrainer.Train("logistic", examples, vectors);

        Assert.True(scorer.Score(TestVectors.Unit(0), 2) > 0.7);
        Assert.InRange(scorer.Score(TestVectors.Unit(1), 2), 0.35, 0.65);
    }
}
