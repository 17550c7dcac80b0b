using System.Numerics.Tensors;
using Marginal.Gateway.Caching;

namespace Marginal.Lab.Caching;

/// <summary>One paraphrase pair of the evaluation: the cached prompt and a query that should find it.</summary>
public sealed record ParaphrasePair(string Origin, string Similar);

/// <summary>
/// One of a query's nearest cached prompts: its cosine to the query, and its cosines to the other candidates of the
/// same list (by position; its own is 1).
/// </summary>
public sealed record CachedCandidate(string Text, float Similarity, float[] SimilarityToCandidates);

/// <summary>A query with the nearest cached prompt found for it and their similarity.</summary>
public sealed record EvaluatedQuery(string Query, string Expected, string Matched, float Similarity)
{
    /// <summary>The <see cref="CacheEvaluation.Shortlist"/> nearest distinct cached prompts, nearest first (exact cosines), for reranking and lexical features.</summary>
    public IReadOnlyList<CachedCandidate> Candidates { get; init; } = [];

    /// <summary>The similarity of the second-nearest cached prompt; 0 when the cache holds one.</summary>
    public float SecondSimilarity { get; init; }

    /// <summary>The similarity between the nearest and second-nearest cached prompts themselves; 0 when there is no second.</summary>
    public float RunnerUpSimilarity { get; init; }

    /// <summary>How much nearer the nearest is than the runner-up: top-1 minus top-2 cosine.</summary>
    public float Margin => Similarity - SecondSimilarity;
}

/// <summary>What <see cref="CacheEvaluation.NearDuplicates"/> counts at one cut.</summary>
public sealed record NearDuplicateCounts(int NearestWrong, int NearestWrongNearDuplicate, int NearestWrongCaseOnly, int TopTwoNearDuplicates, int TopTwoNearestRight);

/// <summary>Counts at one threshold: a hit on the query's own origin is a positive, on another a false hit, no hit a miss.</summary>
public sealed record CacheEvalRow(string Variant, double Threshold, int Positives, int FalseHits, int Misses);

/// <summary>
/// GPTCache's semantic-cache procedure: every distinct origin goes into the cache once (origins with identical text
/// are one entry, and a query that finds that text counts as a positive), every similar is a query, and the nearest
/// origin decides. The semantic cache's checks (<see cref="PromptChecks"/>) can be applied on top of the threshold,
/// one by one or all together, to measure what each costs in positives and gains in false hits.
/// </summary>
public static class CacheEvaluation
{
    /// <summary>The check sets reported: the bare cosine, each check alone, and all of them (what the gateway runs).</summary>
    public static readonly (string Name, string[] Checks)[] Variants =
    [
        ("cosine only", []),
        ("+ numbers", [PromptChecks.Numbers]),
        ("+ negation", [PromptChecks.Negation]),
        ("+ entities", [PromptChecks.Entities]),
        ("all checks", PromptChecks.All),
    ];

    /// <summary>Candidates kept per query for the lexical second stage (<see cref="LexicalFeatures"/>).</summary>
    public const int Shortlist = 5;

    /// <summary>Embeds the distinct origins and the queries with <paramref name="embed"/> (normalised vectors) and finds each query's nearest origin.</summary>
    public static List<EvaluatedQuery> Prepare(IReadOnlyList<ParaphrasePair> pairs, Func<IReadOnlyList<string>, float[][]> embed)
    {
        var origins = pairs.Select(p => p.Origin).Distinct(StringComparer.Ordinal).ToList();
        var originVectors = embed(origins);
        var index = new VectorIndex(originVectors[0].Length);
        for (var i = 0; i < origins.Count; i++)
        {
            index.Add(i, originVectors[i]);
        }
        var queryVectors = embed([.. pairs.Select(p => p.Similar)]);
        var queries = new List<EvaluatedQuery>(pairs.Count);
        for (var i = 0; i < pairs.Count; i++)
        {
            var ((id, similarity), second) = index.NearestTwo(queryVectors[i])!.Value;
            queries.Add(new EvaluatedQuery(pairs[i].Similar, pairs[i].Origin, origins[(int)id], similarity)
            {
                SecondSimilarity = second?.Similarity ?? 0,
                RunnerUpSimilarity = second is var (secondId, _) ? TensorPrimitives.Dot(originVectors[(int)id], originVectors[(int)secondId]) : 0,
                Candidates = CandidatesOf(queryVectors[i], origins, originVectors),
            });
        }
        return queries;
    }

    /// <summary>The <see cref="Shortlist"/> nearest origins by exact cosine, with their cosines to each other.</summary>
    private static CachedCandidate[] CandidatesOf(float[] query, List<string> origins, float[][] originVectors)
    {
        var nearest = Enumerable.Range(0, origins.Count)
            .Select(o => (Origin: o, Similarity: TensorPrimitives.Dot(query, originVectors[o])))
            .OrderByDescending(c => c.Similarity).ThenBy(c => c.Origin)
            .Take(Shortlist).ToArray();
        return [.. nearest.Select(c => new CachedCandidate(origins[c.Origin], c.Similarity,
            [.. nearest.Select(other => TensorPrimitives.Dot(originVectors[c.Origin], originVectors[other.Origin]))]))];
    }

    /// <summary>Distinct origin texts (the cache's entries).</summary>
    public static int DistinctOrigins(IReadOnlyList<ParaphrasePair> pairs) => pairs.Select(p => p.Origin).Distinct(StringComparer.Ordinal).Count();

    /// <summary>Counts at <paramref name="threshold"/>; a candidate nearer the runner-up than <paramref name="minMargin"/> is a miss.</summary>
    public static CacheEvalRow Score(IReadOnlyList<EvaluatedQuery> queries, double threshold, IReadOnlyCollection<string> checks, string variant, double minMargin = 0)
    {
        int positives = 0, falseHits = 0, misses = 0;
        foreach (var query in queries)
        {
            if (query.Similarity < threshold || query.Margin < minMargin || PromptChecks.FirstFailed(query.Query, query.Matched, checks) is not null)
            {
                misses++;
            }
            else if (string.Equals(query.Matched, query.Expected, StringComparison.Ordinal))
            {
                positives++;
            }
            else
            {
                falseHits++;
            }
        }
        return new CacheEvalRow(variant, threshold, positives, falseHits, misses);
    }

    /// <summary>
    /// The row at the lowest threshold (0.001 steps from 0.5) whose false hits are at most <paramref name="falseHits"/>:
    /// the comparison at equal false hits. Null when no threshold gets that low.
    /// </summary>
    public static CacheEvalRow? AtFalseHits(IReadOnlyList<EvaluatedQuery> queries, int falseHits, IReadOnlyCollection<string> checks, string variant)
    {
        for (var step = 500; step <= 1000; step++)
        {
            var row = Score(queries, step / 1000.0, checks, variant);
            if (row.FalseHits <= falseHits)
            {
                return row;
            }
        }
        return null;
    }

    /// <summary>The row with the most positives whose false hits are at most <paramref name="maxFalseHitShare"/> of the queries.</summary>
    public static CacheEvalRow? BestWithin(IReadOnlyList<EvaluatedQuery> queries, double maxFalseHitShare, IReadOnlyCollection<string> checks, string variant)
    {
        CacheEvalRow? best = null;
        for (var step = 500; step <= 1000; step++)
        {
            var row = Score(queries, step / 1000.0, checks, variant);
            if (row.FalseHits <= maxFalseHitShare * queries.Count && (best is null || row.Positives > best.Positives))
            {
                best = row;
            }
        }
        return best;
    }

    /// <summary>The minimum margins searched with the threshold: 0 to 0.1 in 0.005 steps.</summary>
    public static readonly double[] Margins = [.. Enumerable.Range(0, 21).Select(i => i * 0.005)];

    /// <summary>
    /// The (threshold, minimum margin) pair with the most positives whose false hits are at most
    /// <paramref name="maxFalseHitShare"/> of the queries: thresholds in 0.001 steps from 0.5, margins from
    /// <paramref name="margins"/>. The checks are run once per query, not once per pair.
    /// </summary>
    public static (CacheEvalRow Row, double MinMargin)? BestWithMargin(IReadOnlyList<EvaluatedQuery> queries, double maxFalseHitShare, IReadOnlyCollection<string> checks, string variant, IReadOnlyList<double> margins)
    {
        var passes = queries.Select(q => PromptChecks.FirstFailed(q.Query, q.Matched, checks) is null).ToArray();
        var correct = queries.Select(q => string.Equals(q.Matched, q.Expected, StringComparison.Ordinal)).ToArray();
        (CacheEvalRow Row, double MinMargin)? best = null;
        foreach (var margin in margins)
        {
            for (var step = 500; step <= 1000; step++)
            {
                var threshold = step / 1000.0;
                int positives = 0, falseHits = 0;
                for (var i = 0; i < queries.Count; i++)
                {
                    if (passes[i] && queries[i].Similarity >= threshold && queries[i].Margin >= margin)
                    {
                        _ = correct[i] ? positives++ : falseHits++;
                    }
                }
                if (falseHits <= maxFalseHitShare * queries.Count && (best is null || positives > best.Value.Row.Positives))
                {
                    best = (new CacheEvalRow(variant, threshold, positives, falseHits, queries.Count - positives - falseHits), margin);
                }
            }
        }
        return best;
    }

    /// <summary>
    /// Held-out check of a rule: the queries split in seeded halves; the (threshold, margin) with at most 1% false hits
    /// on the training half is scored on the other. Margins [0] is the plain threshold rule.
    /// </summary>
    public static (CacheEvalRow Test, double MinMargin) HeldOut(IReadOnlyList<EvaluatedQuery> queries, int seed, IReadOnlyCollection<string> checks, string variant, IReadOnlyList<double> margins)
    {
        var (train, test) = Halves(queries, seed);
        var (row, margin) = BestWithMargin(train, 0.01, checks, variant, margins)!.Value;
        return (Score(test, row.Threshold, checks, variant, margin), margin);
    }

    /// <summary>
    /// Where the nearest cached prompt is a near-duplicate of another (cosine between the two cached prompts at or above
    /// <paramref name="cut"/>), the cases a second stage must tell apart from a few words: of the queries whose nearest
    /// is wrong, how many found a near-duplicate of their own cached prompt, and how many of those differ from it in
    /// letter case only; of all queries, how many have near-duplicates as their two nearest, and how many of those the
    /// nearest answers rightly.
    /// </summary>
    public static NearDuplicateCounts NearDuplicates(IReadOnlyList<EvaluatedQuery> queries, double cut)
    {
        var wrong = queries.Where(q => q.Matched != q.Expected).ToList();
        var wrongNear = wrong.Where(q => IndexOf(q, q.Matched) is var m and >= 0 && IndexOf(q, q.Expected) is var e and >= 0
            && q.Candidates[m].SimilarityToCandidates[e] >= cut).ToList();
        var topTwo = queries.Where(q => q.Candidates.Count > 1 && q.Candidates[0].SimilarityToCandidates[1] >= cut).ToList();
        return new(wrong.Count, wrongNear.Count, wrongNear.Count(q => string.Equals(q.Matched, q.Expected, StringComparison.OrdinalIgnoreCase)),
            topTwo.Count, topTwo.Count(q => q.Matched == q.Expected));
    }

    private static int IndexOf(EvaluatedQuery query, string text)
    {
        for (var i = 0; i < query.Candidates.Count; i++)
        {
            if (query.Candidates[i].Text == text)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>The seeded split into a training half and a held-out half used by every held-out figure.</summary>
    public static (List<EvaluatedQuery> Train, List<EvaluatedQuery> Test) Halves(IReadOnlyList<EvaluatedQuery> queries, int seed)
    {
        var order = Enumerable.Range(0, queries.Count).ToArray();
        new Random(seed).Shuffle(order);
        return ([.. order.Take(queries.Count / 2).Select(i => queries[i])], [.. order.Skip(queries.Count / 2).Select(i => queries[i])]);
    }
}
