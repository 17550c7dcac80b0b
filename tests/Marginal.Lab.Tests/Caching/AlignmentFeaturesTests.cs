using Marginal.Lab.Caching;

namespace Marginal.Lab.Tests.Caching;

public sealed class AlignmentFeaturesTests
{
    private static readonly TermFrequencies Terms = LexicalFeatures.TermsOf(["enable streaming", "enable non-streaming"]);

    // The query aligns with "enable streaming" at F1 0.9 (every word matched at least 0.8) and with
    // "enable non-streaming" at F1 0.7 (its word "non" matched at 0.2).
    private static AlignmentScore Align(string query, string candidate) => candidate == "enable streaming"
        ? new AlignmentScore(0.9, 0.9, 0.9, 0.8, 0.85)
        : new AlignmentScore(0.6, 0.84, 0.7, 0.9, 0.2);

    private static EvaluatedQuery Query(params CachedCandidate[] candidates) =>
        new("turn on streaming", "enable streaming", candidates[0].Text, candidates[0].Similarity) { Candidates = candidates };

    [Fact]
    public void Of_TwoCandidates_AppendsF1ItsMarginAndTheLowestWordMatches()
    {
        var query = Query(new CachedCandidate("enable streaming", 0.8f, [1, 0.95f]), new CachedCandidate("enable non-streaming", 0.75f, [0.95f, 1]));

        var (matched, features) = AlignmentFeatures.Of(query, Terms, Align, 0, 0);

        Assert.Equal("enable streaming", matched);
        Assert.Equal(13 + AlignmentFeatures.Count, features.Length);
        Assert.Equal(LexicalFeatures.Of(query, Terms, 0).Features, features[..13]);
        Assert.Equal([0.9, 0.9 - 0.7, 0.8, 0.85], features[13..]);
    }

    [Fact]
    public void Of_AlignmentWeight_RerankChoosesTheBetterAlignedCandidate()
    {
        // By cosine the near-duplicate "non-streaming" entry is nearest (0.80 against 0.78); + 0.5 · F1 turns it round (1.15 against 1.23).
        var query = Query(new CachedCandidate("enable non-streaming", 0.8f, [1, 0.95f]), new CachedCandidate("enable streaming", 0.78f, [0.95f, 1]));

        var plain = AlignmentFeatures.Of(query, Terms, Align, 0, 0);
        var reranked = AlignmentFeatures.Of(query, Terms, Align, 0, 0.5);

        Assert.Equal("enable non-streaming", plain.Matched);
        Assert.Equal("enable streaming", reranked.Matched);
        Assert.Equal(0.9 - 0.7, reranked.Features[14], 12);
        // The rerank score's margin (a lexical feature) is that of cosine + 0.5 · F1: (0.78 + 0.45) - (0.80 + 0.35).
        Assert.Equal(0.78 + 0.45 - (0.8 + 0.35), reranked.Features[12], 6);
    }

    [Fact]
    public void Of_OneCandidate_RunnerUpCountsAsF1Zero()
    {
        var query = Query(new CachedCandidate("enable streaming", 0.8f, [1]));

        var (_, features) = AlignmentFeatures.Of(query, Terms, Align, 0.1, 0.3);

        Assert.Equal(0.9, features[14], 12);
    }
}
