using Marginal.Lab.Caching;

namespace Marginal.Lab.Tests.Caching;

public sealed class LexicalFeaturesTests
{
    // Cached prompts "open the file" and "close the file": df(the) = df(file) = 2, df(open) = df(close) = 1, N = 2.
    private static TermFrequencies Terms() => LexicalFeatures.TermsOf(["open the file", "close the file"]);

    private static EvaluatedQuery Query(string query, string expected, params CachedCandidate[] candidates) =>
        new(query, expected, candidates[0].Text, candidates[0].Similarity) { Candidates = candidates };

    [Fact]
    public void Of_TwoCandidates_AmbiguityAndLexicalFeaturesAsHandComputed()
    {
        var query = Query("open the file please", "open the file",
            new CachedCandidate("open the file", 0.75f, [1, 0.625f]),
            new CachedCandidate("close the file", 0.5f, [0.625f, 1]));

        var (matched, features) = LexicalFeatures.Of(query, Terms(), 0);

        // idf(the) = idf(file) = 1, idf(open) = idf(close) = ln 1.5 + 1, idf(please) = ln 3 + 1.
        double rare = Math.Log(1.5) + 1, unseen = Math.Log(3) + 1;
        var jaccard1 = (rare + 2) / (rare + 2 + unseen);
        var jaccard2 = 2 / (rare + 2 + unseen + rare);
        Assert.Equal("open the file", matched);
        Assert.Equal(13, features.Length);
        Assert.Equal(0.25, features[6], 6);
        Assert.Equal(0.625, features[7], 6);
        Assert.Equal(jaccard1, features[8], 12);
        Assert.Equal(jaccard1 - jaccard2, features[9], 12);
        Assert.Equal(1, features[10]);
        Assert.Equal(0, features[11]);
        Assert.Equal(0.25, features[12], 6);
    }

    [Fact]
    public void Rerank_EqualCosines_ChoosesTheLexicallyMatchingCandidate()
    {
        CachedCandidate[] candidates = [new("close the file", 0.8f, [1, 0.9f]), new("open the file", 0.8f, [0.9f, 1])];
        var query = TermFrequencies.TokensOf("open the file please");

        Assert.Equal((1, 0), LexicalFeatures.Rerank(query, candidates, Terms(), 0.1));
        Assert.Equal((0, 1), LexicalFeatures.Rerank(query, candidates, Terms(), 0));
    }

    [Fact]
    public void Of_RerankWeight_MatchesTheRerankedCandidate()
    {
        var query = Query("open the file please", "open the file",
            new CachedCandidate("close the file", 0.8f, [1, 0.9f]),
            new CachedCandidate("open the file", 0.79f, [0.9f, 1]));

        Assert.Equal("close the file", LexicalFeatures.Of(query, Terms(), 0).Matched);
        Assert.Equal("open the file", LexicalFeatures.Of(query, Terms(), 0.1).Matched);
    }

    [Fact]
    public void Train_SeparableOnlyByWeightedOverlap_LearnsTheLexicalFeature()
    {
        // Every query "rareNN common" has one candidate of the same length and cosine. A right candidate shares the rare
        // word ("rareNN filler"), a wrong one the common word ("qqNNxx common"): plain word overlap, length, checks and
        // cosine are equal, and only the IDF-weighted overlap tells them apart.
        var cases = Enumerable.Range(10, 40).Select(i => (Query: $"rare{i} common", Candidate: i % 2 == 0 ? $"rare{i} filler" : $"qq{i}xx common", Right: i % 2 == 0)).ToList();
        var terms = LexicalFeatures.TermsOf(cases.Select(c => c.Candidate));
        (double[] Features, bool Right) Describe((string Query, string Candidate, bool Right) c) =>
            (LexicalFeatures.Of(Query(c.Query, c.Right ? c.Candidate : "elsewhere", new CachedCandidate(c.Candidate, 0.9f, [1])), terms, 0).Features, c.Right);
        var examples = cases.Select(Describe).ToList();

        var model = HitClassifier.Train(examples);

        Assert.Equal(examples[0].Features[..8], examples[1].Features[..8]);
        Assert.True(model.Probability(Describe(("rare20 common", "rare20 filler", true)).Features) > 0.9);
        Assert.True(model.Probability(Describe(("rare21 common", "qq21xx common", false)).Features) < 0.1);
    }

    [Fact]
    public void EvaluateCrossValidated_TwoOptions_KeepsTheOneThatSeparates()
    {
        // 200 queries whose nearest candidate is right for the even ones: option 0 sees the truth as a feature, option 1 noise.
        var queries = Enumerable.Range(0, 200).Select(i => Query($"q{i}", i % 2 == 0 ? $"c{i}" : "other", new CachedCandidate($"c{i}", 0.9f, [1]))).ToList();
        Func<EvaluatedQuery, (string, double[])> truth = q => (q.Matched, [q.Expected == q.Matched ? 1 : 0]);
        Func<EvaluatedQuery, (string, double[])> noise = q => (q.Matched, [q.Query.Length % 3]);

        var (test, _, option) = HitClassifier.EvaluateCrossValidated(queries, 42, [noise, truth]);

        Assert.Equal(1, option);
        Assert.Equal(0, test.FalseHits);
        Assert.Equal(100, test.Positives + test.Misses + test.FalseHits);
        Assert.True(test.Positives > 40);
    }
}
