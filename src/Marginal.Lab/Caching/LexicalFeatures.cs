namespace Marginal.Lab.Caching;

/// <summary>
/// The lexical second stage of a semantic candidate, evaluated on GPTCache's pairs only (not used by the live cache):
/// an optional rerank of the nearest few cached prompts by cosine + w · IDF-weighted Jaccard, and the features of the
/// chosen candidate c1 against the runner-up c2 for <see cref="HitClassifier"/>. The document frequencies are those of
/// the cached prompts (<see cref="TermFrequencies"/>), never of the queries.
/// </summary>
public static class LexicalFeatures
{
    /// <summary>
    /// The positions of the best and second candidate by cosine + <paramref name="weight"/> · weighted Jaccard with the
    /// query (second is -1 when there is one candidate). Ties keep the cosine order. Weight 0 is the cosine order.
    /// </summary>
    public static (int Best, int Second) Rerank(IReadOnlySet<string> queryTokens, IReadOnlyList<CachedCandidate> candidates, TermFrequencies terms, double weight) =>
        RerankScored(queryTokens, candidates, terms, weight) is var (best, second, _) ? (best, second) : default;

    /// <summary><see cref="Rerank"/> with the best score minus the second's (the best's score when there is no second).</summary>
    private static (int Best, int Second, double ScoreMargin) RerankScored(IReadOnlySet<string> queryTokens, IReadOnlyList<CachedCandidate> candidates, TermFrequencies terms, double weight)
    {
        var scores = new double[candidates.Count];
        for (var i = 0; i < candidates.Count; i++)
        {
            scores[i] = candidates[i].Similarity + (weight == 0 ? 0 : weight * terms.WeightedJaccard(queryTokens, TermFrequencies.TokensOf(candidates[i].Text)));
        }
        return TopTwo(scores);
    }

    /// <summary>The positions of the highest and second-highest score (second -1 when there is one), and the difference (the highest when there is no second). Ties keep the earlier position.</summary>
    public static (int Best, int Second, double ScoreMargin) TopTwo(ReadOnlySpan<double> scores)
    {
        int best = -1, second = -1;
        double bestScore = double.NegativeInfinity, secondScore = double.NegativeInfinity;
        for (var i = 0; i < scores.Length; i++)
        {
            if (scores[i] > bestScore)
            {
                (second, secondScore) = (best, bestScore);
                (best, bestScore) = (i, scores[i]);
            }
            else if (scores[i] > secondScore)
            {
                (second, secondScore) = (i, scores[i]);
            }
        }
        return (best, second, bestScore - (second < 0 ? 0 : secondScore));
    }

    /// <summary>
    /// The candidate chosen for <paramref name="query"/> (reranked with <paramref name="rerankWeight"/>) and its
    /// features (<see cref="FeaturesOf"/>).
    /// </summary>
    public static (string Matched, double[] Features) Of(EvaluatedQuery query, TermFrequencies terms, double rerankWeight)
    {
        var (best, second, scoreMargin) = RerankScored(TermFrequencies.TokensOf(query.Query), query.Candidates, terms, rerankWeight);
        return (query.Candidates[best].Text, FeaturesOf(query, terms, best, second, scoreMargin));
    }

    /// <summary>
    /// The features of candidate <paramref name="best"/> against the runner-up <paramref name="second"/> (-1: none):
    /// <see cref="HitClassifier.FeaturesOf(string, string, float)"/> of c1, the margin over c2 and the cosine of c1 to
    /// c2 (the ambiguity pair), then the weighted Jaccard of query and c1 and its difference c1 − c2, and the coverage
    /// of c1's special tokens by the query and its difference c1 − c2, and the rerank score's margin
    /// (<paramref name="scoreMargin"/>: c1's cosine + w · overlap minus c2's; the cosine margin again when w is 0). A
    /// missing c2 counts as cosine 0, overlap 0 and coverage 0.
    /// </summary>
    public static double[] FeaturesOf(EvaluatedQuery query, TermFrequencies terms, int best, int second, double scoreMargin)
    {
        var candidates = query.Candidates;
        var queryTokens = TermFrequencies.TokensOf(query.Query);
        var querySpecial = TermFrequencies.SpecialTokensOf(query.Query);
        var c1 = candidates[best];
        var jaccard1 = terms.WeightedJaccard(queryTokens, TermFrequencies.TokensOf(c1.Text));
        var coverage1 = TermFrequencies.Coverage(querySpecial, TermFrequencies.SpecialTokensOf(c1.Text));
        double similarity2 = 0, between = 0, jaccard2 = 0, coverage2 = 0;
        if (second >= 0)
        {
            var c2 = candidates[second];
            (similarity2, between) = (c2.Similarity, c1.SimilarityToCandidates[second]);
            jaccard2 = terms.WeightedJaccard(queryTokens, TermFrequencies.TokensOf(c2.Text));
            coverage2 = TermFrequencies.Coverage(querySpecial, TermFrequencies.SpecialTokensOf(c2.Text));
        }
        return
        [
            .. HitClassifier.FeaturesOf(query.Query, c1.Text, c1.Similarity),
            c1.Similarity - similarity2, between, jaccard1, jaccard1 - jaccard2, coverage1, coverage1 - coverage2, scoreMargin,
        ];
    }

    /// <summary>The document frequencies of the distinct cached prompts (the evaluation's cache holds every distinct origin).</summary>
    public static TermFrequencies TermsOf(IEnumerable<string> cachedPrompts)
    {
        var terms = new TermFrequencies();
        foreach (var prompt in cachedPrompts.Distinct(StringComparer.Ordinal))
        {
            terms.Add(prompt);
        }
        return terms;
    }
}
