namespace Marginal.Lab.Caching;

/// <summary>
/// The token-alignment second stage of a semantic candidate, evaluated on GPTCache's pairs only (not used by the live
/// cache): an optional rerank of the nearest few cached prompts by cosine + w_l · IDF-weighted Jaccard + w_a · alignment
/// F1 (<see cref="TokenAlignment"/>), and the features of the chosen candidate c1 against the runner-up c2 for
/// <see cref="HitClassifier"/>: the lexical ones (<see cref="LexicalFeatures.FeaturesOf"/>), then F1(q, c1), F1(q, c1)
/// − F1(q, c2), and the lowest content-word match of the query in c1 and of c1 in the query.
/// </summary>
public static class AlignmentFeatures
{
    /// <summary>Features added after the lexical ones.</summary>
    public const int Count = 4;

    /// <summary>
    /// The candidate chosen for <paramref name="query"/> (reranked by cosine + <paramref name="lexicalWeight"/> ·
    /// weighted Jaccard + <paramref name="alignmentWeight"/> · F1; both 0: the cosine order) and its features.
    /// <paramref name="align"/> gives the alignment of a query with a cached prompt (<see cref="TokenAlignment.Score"/>
    /// with the caller's token vectors and word weights; the caller may memoise it). A missing c2 counts as F1 0.
    /// </summary>
    public static (string Matched, double[] Features) Of(EvaluatedQuery query, TermFrequencies terms, Func<string, string, AlignmentScore> align, double lexicalWeight, double alignmentWeight)
    {
        var candidates = query.Candidates;
        var queryWords = lexicalWeight == 0 ? null : TermFrequencies.TokensOf(query.Query);
        var alignments = new AlignmentScore[candidates.Count];
        var scores = new double[candidates.Count];
        for (var i = 0; i < candidates.Count; i++)
        {
            alignments[i] = align(query.Query, candidates[i].Text);
            scores[i] = candidates[i].Similarity + (alignmentWeight * alignments[i].F1)
                + (queryWords is null ? 0 : lexicalWeight * terms.WeightedJaccard(queryWords, TermFrequencies.TokensOf(candidates[i].Text)));
        }
        var (best, second, scoreMargin) = LexicalFeatures.TopTwo(scores);
        var a1 = alignments[best];
        var f1Second = second < 0 ? 0 : alignments[second].F1;
        return (candidates[best].Text,
        [
            .. LexicalFeatures.FeaturesOf(query, terms, best, second, scoreMargin),
            a1.F1, a1.F1 - f1Second, a1.LowestQueryWord, a1.LowestCandidateWord,
        ]);
    }

    /// <summary>
    /// The features of every candidate of <paramref name="query"/>, in candidate order, for a model that scores each
    /// candidate (<see cref="HitClassifier.EvaluateCandidatesCrossValidated"/>): <see cref="HitClassifier.FeaturesOf(string, string, float)"/>
    /// of the candidate, its cosine minus the best other candidate's, its highest cosine to another candidate, the
    /// weighted Jaccard with the query and its lead over the best other's, the coverage of its special tokens and its
    /// lead, the alignment F1 and its lead, the lowest content-word match of the query in it and of it in the query, and
    /// its position by cosine. With one candidate the others count as 0.
    /// </summary>
    public static double[][] OfCandidates(EvaluatedQuery query, TermFrequencies terms, Func<string, string, AlignmentScore> align)
    {
        var candidates = query.Candidates;
        var queryWords = TermFrequencies.TokensOf(query.Query);
        var querySpecial = TermFrequencies.SpecialTokensOf(query.Query);
        var jaccard = new double[candidates.Count];
        var coverage = new double[candidates.Count];
        var alignments = new AlignmentScore[candidates.Count];
        for (var i = 0; i < candidates.Count; i++)
        {
            jaccard[i] = terms.WeightedJaccard(queryWords, TermFrequencies.TokensOf(candidates[i].Text));
            coverage[i] = TermFrequencies.Coverage(querySpecial, TermFrequencies.SpecialTokensOf(candidates[i].Text));
            alignments[i] = align(query.Query, candidates[i].Text);
        }
        var result = new double[candidates.Count][];
        for (var i = 0; i < candidates.Count; i++)
        {
            double otherCosine = 0, nearestOther = 0, otherJaccard = 0, otherCoverage = 0, otherF1 = 0;
            for (var j = 0; j < candidates.Count; j++)
            {
                if (j != i)
                {
                    otherCosine = Math.Max(otherCosine, candidates[j].Similarity);
                    nearestOther = Math.Max(nearestOther, candidates[i].SimilarityToCandidates[j]);
                    otherJaccard = Math.Max(otherJaccard, jaccard[j]);
                    otherCoverage = Math.Max(otherCoverage, coverage[j]);
                    otherF1 = Math.Max(otherF1, alignments[j].F1);
                }
            }
            var a = alignments[i];
            result[i] =
            [
                .. HitClassifier.FeaturesOf(query.Query, candidates[i].Text, candidates[i].Similarity),
                candidates[i].Similarity - otherCosine, nearestOther, jaccard[i], jaccard[i] - otherJaccard, coverage[i], coverage[i] - otherCoverage,
                a.F1, a.F1 - otherF1, a.LowestQueryWord, a.LowestCandidateWord, i,
            ];
        }
        return result;
    }
}
