using System.Numerics.Tensors;

namespace Marginal.Lab.Caching;

/// <summary>
/// How well the words of a query and of a cached prompt match one another, read token by token (BERTScore, Zhang et
/// al., ICLR 2020, "BERTScore: Evaluating Text Generation with BERT", arXiv:1904.09675): every token is matched
/// greedily to its most similar token of the other text (cosine of contextual vectors); recall is the mean over the
/// query's tokens, precision over the cached prompt's, F1 their harmonic mean, each optionally weighted by a word's
/// weight (IDF). A near-paraphrase about another thing has a word with no counterpart ("streaming" against
/// "non-streaming", another library's name): its best match is low even when the sentence vectors are close, so the
/// lowest word match of either side is reported too. Evaluation only (not used by the live cache).
/// </summary>
public static class TokenAlignment
{
    /// <summary>
    /// The alignment of <paramref name="query"/> with <paramref name="candidate"/>. <paramref name="weight"/> gives a
    /// word's weight (null: every token weighs 1); a word's tokens share its weight. The lowest word matches are over
    /// content words (with a letter or digit), a word's match being the mean of its tokens' best similarities; 1 when a
    /// side has no content word. An empty side scores 0.
    /// </summary>
    public static AlignmentScore Score(TokenVectors query, TokenVectors candidate, Func<string, double>? weight = null)
    {
        if (query.Count == 0 || candidate.Count == 0)
        {
            return default;
        }
        Span<float> queryBest = query.Count <= 256 ? stackalloc float[query.Count] : new float[query.Count];
        Span<float> candidateBest = candidate.Count <= 256 ? stackalloc float[candidate.Count] : new float[candidate.Count];
        queryBest.Fill(float.NegativeInfinity);
        candidateBest.Fill(float.NegativeInfinity);
        for (var i = 0; i < query.Count; i++)
        {
            var row = query.Vector(i);
            for (var j = 0; j < candidate.Count; j++)
            {
                var similarity = TensorPrimitives.Dot(row, candidate.Vector(j));
                queryBest[i] = Math.Max(queryBest[i], similarity);
                candidateBest[j] = Math.Max(candidateBest[j], similarity);
            }
        }
        var recall = WeightedMean(query, queryBest, weight);
        var precision = WeightedMean(candidate, candidateBest, weight);
        var f1 = precision + recall <= 0 ? 0 : 2 * precision * recall / (precision + recall);
        return new AlignmentScore(precision, recall, f1, LowestWordMatch(query, queryBest), LowestWordMatch(candidate, candidateBest));
    }

    private static double WeightedMean(TokenVectors text, ReadOnlySpan<float> best, Func<string, double>? weight)
    {
        double sum = 0, total = 0;
        for (var i = 0; i < text.Count; i++)
        {
            var w = weight is null ? 1 : weight(text.Words[text.WordOf(i)]);
            (sum, total) = (sum + (w * best[i]), total + w);
        }
        return total <= 0 ? 0 : sum / total;
    }

    private static double LowestWordMatch(TokenVectors text, ReadOnlySpan<float> best)
    {
        var lowest = 1.0;
        var i = 0;
        while (i < text.Count)
        {
            var word = text.WordOf(i);
            double sum = 0;
            var start = i;
            for (; i < text.Count && text.WordOf(i) == word; i++)
            {
                sum += best[i];
            }
            if (IsContent(text.Words[word]))
            {
                lowest = Math.Min(lowest, sum / (i - start));
            }
        }
        return lowest;
    }

    /// <summary>Whether a word carries content: it has a letter or a digit (punctuation does not).</summary>
    public static bool IsContent(string word)
    {
        foreach (var c in word)
        {
            if (char.IsLetterOrDigit(c))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// IDF weights over the cached prompts for <see cref="Score"/>: a content word weighs its <see cref="TermFrequencies.Idf"/>
    /// (a WordPiece word is looked up as itself, so a hyphenated word's parts weigh as unseen words, the most); punctuation
    /// weighs 1, the weight of a word found in every prompt.
    /// </summary>
    public static Func<string, double> IdfWeights(TermFrequencies terms) => word => IsContent(word) ? terms.Idf(word) : 1;
}

/// <summary>One alignment: precision (over the cached prompt's tokens), recall (over the query's), their F1, and the lowest content-word match of the query and of the cached prompt.</summary>
public readonly record struct AlignmentScore(double Precision, double Recall, double F1, double LowestQueryWord, double LowestCandidateWord);
