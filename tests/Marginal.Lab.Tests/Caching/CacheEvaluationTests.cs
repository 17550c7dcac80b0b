using Marginal.Gateway.Caching;
using Marginal.Lab.Caching;

namespace Marginal.Lab.Tests.Caching;

/// <summary>The evaluation's counts on a case small enough to work out by hand.</summary>
public sealed class CacheEvaluationTests
{
    // Origins alpha, beta, beta 5 (alpha twice: one entry). Unit vectors by hand:
    //   alpha = (1, 0), beta = (0, 1), beta 5 = (0.28, 0.96).
    //   qa (alpha's) = (0.96, 0.28):    nearest alpha, cosine 0.96 → positive at 0.7 and 0.9.
    //   qb (beta's) = (0.85, 0.527):    nearest alpha, cosine 0.85 → false hit at 0.7, miss at 0.9.
    //   qc (alpha's) = (0.8, -0.6):     nearest alpha, cosine 0.8  → positive at 0.7, miss at 0.9.
    //   qd 6 (beta 5's) = (0.28, 0.96): nearest beta 5, cosine 1   → positive, but 6 ≠ 5: a miss with the numbers check.
    private static readonly ParaphrasePair[] Pairs =
    [
        new("alpha", "qa"), new("beta", "qb"), new("alpha", "qc"), new("beta 5", "qd 6"),
    ];

    private static readonly Dictionary<string, float[]> Vectors = new()
    {
        ["alpha"] = [1, 0], ["beta"] = [0, 1], ["beta 5"] = [0.28f, 0.96f],
        ["qa"] = [0.96f, 0.28f], ["qb"] = [0.85f, 0.527f], ["qc"] = [0.8f, -0.6f], ["qd 6"] = [0.28f, 0.96f],
    };

    private static List<EvaluatedQuery> Queries() => CacheEvaluation.Prepare(Pairs, texts => [.. texts.Select(t => Vectors[t])]);

    [Fact]
    public void Score_HandComputedCase_CountsPositivesFalseHitsMisses()
    {
        var queries = Queries();

        Assert.Equal(3, CacheEvaluation.DistinctOrigins(Pairs));
        Assert.Equal(new CacheEvalRow("c", 0.9, 2, 0, 2), CacheEvaluation.Score(queries, 0.9, [], "c"));
        Assert.Equal(new CacheEvalRow("c", 0.7, 3, 1, 0), CacheEvaluation.Score(queries, 0.7, [], "c"));
        Assert.Equal(new CacheEvalRow("n", 0.7, 2, 1, 1), CacheEvaluation.Score(queries, 0.7, [PromptChecks.Numbers], "n"));
    }

    [Fact]
    public void Prepare_HandComputedCase_MarginsAgainstTheRunnerUp()
    {
        var queries = Queries();

        // qa: alpha 0.96, runner-up beta 5 0.5376 (0.96·0.28 + 0.28·0.96); qb: alpha 0.85, runner-up beta 5 0.744.
        Assert.Equal(0.96f - 0.5376f, queries[0].Margin, 0.0001f);
        Assert.Equal(0.85f - (0.85f * 0.28f + 0.527f * 0.96f), queries[1].Margin, 0.0001f);
        // alpha and beta 5 themselves: cosine 0.28.
        Assert.Equal(0.28f, queries[0].RunnerUpSimilarity, 0.0001f);
    }

    [Fact]
    public void Score_MinMargin_TurnsTheAmbiguousFalseHitIntoAMiss()
    {
        // Margins: qa 0.42, qb 0.106 (its false hit), qc 1.152 (runner-up beta 5 at -0.352), qd 0.04 (beta at 0.96).
        var row = CacheEvaluation.Score(Queries(), 0.7, [], "m", minMargin: 0.2);

        Assert.Equal((2, 0, 2), (row.Positives, row.FalseHits, row.Misses));
    }

    [Fact]
    public void BestWithMargin_MarginRemovesTheFalseHit_LowestThresholdKeepsQaAndQc()
    {
        var best = CacheEvaluation.BestWithMargin(Queries(), 0, [], "m", [0.2]);

        Assert.Equal((0.5, 0.2, 2, 0), (best!.Value.Row.Threshold, best.Value.MinMargin, best.Value.Row.Positives, best.Value.Row.FalseHits));
    }

    [Fact]
    public void AtFalseHits_Zero_LowestThresholdAboveTheFalseHits()
    {
        var row = CacheEvaluation.AtFalseHits(Queries(), 0, [], "c");

        Assert.Equal((0.851, 2, 0), (row!.Threshold, row.Positives, row.FalseHits));
    }

    [Fact]
    public void NearDuplicates_HandComputedCase_CountsWrongNearestAndNearDuplicateTopTwo()
    {
        var queries = Queries();

        // qb's nearest (alpha) is wrong; alpha and beta are orthogonal, so not near-duplicates at 0.95 but at 0.
        // qd 6's two nearest are beta 5 and beta (cosine 0.96 to each other), and beta 5 is its own: nearest right.
        Assert.Equal(new NearDuplicateCounts(1, 0, 0, 1, 1), CacheEvaluation.NearDuplicates(queries, 0.95));
        Assert.Equal(new NearDuplicateCounts(1, 1, 0, 4, 3), CacheEvaluation.NearDuplicates(queries, 0));
        Assert.Equal(new NearDuplicateCounts(1, 0, 0, 0, 0), CacheEvaluation.NearDuplicates(queries, 0.97));
    }

    [Fact]
    public void NearDuplicates_CachedPromptsDifferingInLetterCase_CountedAsCaseOnly()
    {
        // The query is the second origin's, but the first (same words, other case; cosine 0.99 to it) is nearer.
        ParaphrasePair[] pairs = [new("Load AudioFolder", "x"), new("Load audiofolder", "q")];
        var vectors = new Dictionary<string, float[]>
        {
            ["Load AudioFolder"] = [1, 0], ["Load audiofolder"] = [0.99f, 0.14106736f], ["x"] = [1, 0], ["q"] = [1, 0],
        };
        var queries = CacheEvaluation.Prepare(pairs, texts => [.. texts.Select(t => vectors[t])]);

        Assert.Equal(new NearDuplicateCounts(1, 1, 1, 2, 1), CacheEvaluation.NearDuplicates(queries, 0.95));
    }
}
