using Marginal.Lab.Caching;

namespace Marginal.Lab.Tests.Caching;

public sealed class HitClassifierTests
{
    [Fact]
    public void FeaturesOf_TwoPrompts_OverlapLengthAndChecksAsHandComputed()
    {
        var features = HitClassifier.FeaturesOf("Is Paris big?", "Is Rome big", 0.8f);

        // Words {is, paris, big} and {is, rome, big}: 2 shared of 4. Lengths 13 and 11. Same numbers and negation;
        // the capitalised names differ.
        Assert.Equal([0.8f, 0.5, 11 / 13.0, 1, 1, 0], features);
    }

    [Fact]
    public void Train_SeparableBySimilarity_ScoresCorrectCandidatesHigher()
    {
        var examples = new List<(double[], bool)>();
        for (var i = 0; i < 40; i++)
        {
            var similarity = 0.5 + (i / 100.0);
            examples.Add(([similarity, 0.5, 1, 1, 1, 1], similarity >= 0.7));
        }

        var model = HitClassifier.Train(examples);

        Assert.True(model.Probability([0.85, 0.5, 1, 1, 1, 1]) > 0.9);
        Assert.True(model.Probability([0.55, 0.5, 1, 1, 1, 1]) < 0.1);
    }

    [Fact]
    public void EvaluateCandidatesCrossValidated_RightCandidateSecondByCosine_ScoresEveryCandidateAndPicksIt()
    {
        // 200 queries with two candidates; the right one is always second by cosine, and only a feature marks it. A model
        // that scores the nearest alone would answer every query wrongly; one that scores every candidate finds it, and an
        // option whose features say nothing (every candidate alike: the first, wrong one is chosen) is not kept.
        var queries = Enumerable.Range(0, 200).Select(i => new EvaluatedQuery($"q{i}", $"right{i}", $"wrong{i}", 0.9f)
        {
            Candidates = [new CachedCandidate($"wrong{i}", 0.9f, [1, 0.8f]), new CachedCandidate($"right{i}", 0.85f, [0.8f, 1])],
        }).ToList();
        Func<EvaluatedQuery, double[][]> marked = q => [.. q.Candidates.Select(c => new double[] { c.Similarity, c.Text == q.Expected ? 1 : 0 })];
        Func<EvaluatedQuery, double[][]> uninformative = q => [.. q.Candidates.Select(_ => new double[] { 0.5, 0 })];

        var (test, _, option) = HitClassifier.EvaluateCandidatesCrossValidated(queries, 42, [uninformative, marked]);

        Assert.Equal(1, option);
        Assert.Equal(0, test.FalseHits);
        Assert.Equal(100, test.Positives);
    }

    [Fact]
    public void Folds_NineHundredNinetyNineQueries_EveryQueryInOneFoldOfNinetyNineOrHundred()
    {
        var folds = HitClassifier.Folds(999, 10, 42);

        Assert.Equal(999, folds.Length);
        Assert.All(folds, f => Assert.InRange(f, 0, 9));
        Assert.Equal([100, 100, 100, 100, 100, 100, 100, 100, 100, 99], folds.GroupBy(f => f).OrderBy(g => g.Key).Select(g => g.Count()));
    }

    [Fact]
    public void Folds_SameAndOtherSeed_SameAssignmentOnlyForTheSameSeed()
    {
        Assert.Equal(HitClassifier.Folds(999, 10, 42), HitClassifier.Folds(999, 10, 42));
        Assert.NotEqual(HitClassifier.Folds(999, 10, 42), HitClassifier.Folds(999, 10, 1));
        // Shuffled, not dealt in order: the first ten queries are not folds 0..9.
        Assert.NotEqual(Enumerable.Range(0, 10), HitClassifier.Folds(999, 10, 42).Take(10));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EvaluateCandidatesKFold_RightCandidateSecondByCosine_ScoresEveryQueryOnceAndPicksIt(bool network)
    {
        var queries = SecondIsRight(200);
        Func<EvaluatedQuery, double[][]> marked = q => [.. q.Candidates.Select(c => new double[] { c.Similarity, c.Text == q.Expected ? 1 : 0 })];
        Func<EvaluatedQuery, double[][]> uninformative = q => [.. q.Candidates.Select(_ => new double[] { 0.5, 0 })];

        var (row, lowest, highest) = HitClassifier.EvaluateCandidatesKFold(queries, 42, [uninformative, marked], network ? HitNetwork.Train : null);

        Assert.Equal(200, row.Positives + row.FalseHits + row.Misses);
        Assert.Equal(200, row.Positives);
        Assert.InRange(lowest, 0, highest);
    }

    [Fact]
    public void EvaluateKFold_NearestOnlyAndItIsAlwaysWrong_NoPositivesAndAtMostOnePercentFalseHits()
    {
        // Scoring the nearest candidate alone (wrong for every query), nothing can be a positive; the threshold, chosen
        // inside each training set for at most 1% out-of-fold false hits, must refuse nearly all of them held out.
        var queries = SecondIsRight(200);
        Func<EvaluatedQuery, (string, double[])> nearest = q => (q.Matched, [q.Similarity]);

        var (row, _, _) = HitClassifier.EvaluateKFold(queries, 1, [nearest]);

        Assert.Equal(200, row.Positives + row.FalseHits + row.Misses);
        Assert.Equal(0, row.Positives);
        Assert.InRange(row.FalseHits, 0, 2);
    }

    /// <summary>Queries with two candidates whose right one is always second by cosine (the nearest, matched, is wrong).</summary>
    private static List<EvaluatedQuery> SecondIsRight(int count) => [.. Enumerable.Range(0, count).Select(i => new EvaluatedQuery($"q{i}", $"right{i}", $"wrong{i}", 0.9f)
    {
        Candidates = [new CachedCandidate($"wrong{i}", 0.9f, [1, 0.8f]), new CachedCandidate($"right{i}", 0.85f, [0.8f, 1])],
    })];
}
