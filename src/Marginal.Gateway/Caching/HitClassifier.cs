using System.Text.RegularExpressions;

namespace Marginal.Gateway.Caching;

/// <summary>
/// A second-stage check for a semantic candidate, evaluated on GPTCache's pairs only (not used by the live cache): a
/// logistic regression over cheap features of (query, nearest cached prompt) — the cosine, word overlap (Jaccard),
/// the length ratio and the three <see cref="PromptChecks"/> as 0/1 — predicting whether the candidate answers the
/// query. Trained on a seeded half of the queries, its acceptance threshold chosen on that half for at most 1% false
/// hits, and scored on the other half beside the cosine-plus-checks rule tuned the same way.
/// </summary>
public sealed partial class HitClassifier
{
    private readonly int _features;
    private readonly double[] _weights;
    private readonly double[] _mean;
    private readonly double[] _scale;

    private HitClassifier(int features)
    {
        _features = features;
        (_weights, _mean, _scale) = (new double[features + 1], new double[features], new double[features]);
    }

    [GeneratedRegex(@"\w+")]
    private static partial Regex Word();

    /// <summary>The feature vector of a candidate.</summary>
    public static double[] FeaturesOf(string query, string candidate, float similarity)
    {
        var a = Word().Matches(query.ToLowerInvariant()).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
        var b = Word().Matches(candidate.ToLowerInvariant()).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
        var union = a.Union(b).Count();
        return
        [
            similarity,
            union == 0 ? 1 : (double)a.Intersect(b).Count() / union,
            Math.Min(query.Length, candidate.Length) / (double)Math.Max(1, Math.Max(query.Length, candidate.Length)),
            PromptChecks.FirstFailed(query, candidate, [PromptChecks.Numbers]) is null ? 1 : 0,
            PromptChecks.FirstFailed(query, candidate, [PromptChecks.Negation]) is null ? 1 : 0,
            PromptChecks.FirstFailed(query, candidate, [PromptChecks.Entities]) is null ? 1 : 0,
        ];
    }

    /// <summary>
    /// The features of an evaluated query; with <paramref name="ambiguity"/> also the candidate list's: the margin
    /// (top-1 minus top-2 cosine) and the similarity of the top two cached prompts to each other.
    /// </summary>
    public static double[] FeaturesOf(EvaluatedQuery query, bool ambiguity) =>
        ambiguity ? [.. FeaturesOf(query.Query, query.Matched, query.Similarity), query.Margin, query.RunnerUpSimilarity]
        : FeaturesOf(query.Query, query.Matched, query.Similarity);

    /// <summary>Fits the weights by full-batch gradient descent on the log loss (standardised features, 3,000 steps, L2 1e-3).</summary>
    public static HitClassifier Train(IReadOnlyList<(double[] Features, bool Correct)> examples)
    {
        var model = new HitClassifier(examples[0].Features.Length);
        var count = model._features;
        for (var f = 0; f < count; f++)
        {
            var mean = examples.Average(e => e.Features[f]);
            var sd = Math.Sqrt(examples.Average(e => (e.Features[f] - mean) * (e.Features[f] - mean)));
            (model._mean[f], model._scale[f]) = (mean, sd > 1e-9 ? sd : 1);
        }
        var gradient = new double[count + 1];
        for (var step = 0; step < 3000; step++)
        {
            Array.Clear(gradient);
            foreach (var (features, correct) in examples)
            {
                var error = model.Probability(features) - (correct ? 1 : 0);
                for (var f = 0; f < count; f++)
                {
                    gradient[f] += error * (features[f] - model._mean[f]) / model._scale[f];
                }
                gradient[count] += error;
            }
            for (var f = 0; f <= count; f++)
            {
                model._weights[f] -= 0.5 * ((gradient[f] / examples.Count) + (f < count ? 1e-3 * model._weights[f] : 0));
            }
        }
        return model;
    }

    /// <summary>The predicted probability that the candidate answers the query.</summary>
    public double Probability(double[] features)
    {
        var z = _weights[_features];
        for (var f = 0; f < _features; f++)
        {
            z += _weights[f] * (features[f] - _mean[f]) / _scale[f];
        }
        return 1 / (1 + Math.Exp(-z));
    }

    /// <summary>
    /// The seeded split evaluation: <c>Train</c> half fits the model and picks the lowest probability threshold (0.001
    /// steps) with false hits ≤ 1% of that half; <c>Test</c> is the other half scored at it. The baseline row does the
    /// same with the cosine threshold of the cosine-plus-all-checks rule.
    /// </summary>
    public static (CacheEvalRow Baseline, CacheEvalRow Classifier, double CosineThreshold, double ProbabilityThreshold) Evaluate(IReadOnlyList<EvaluatedQuery> queries, int seed, bool ambiguity = false)
    {
        var (train, test) = CacheEvaluation.Halves(queries, seed);
        var baselineTrain = CacheEvaluation.BestWithin(train, 0.01, PromptChecks.All, "all checks")!;
        var baseline = CacheEvaluation.Score(test, baselineTrain.Threshold, PromptChecks.All, "all checks");
        var model = Train([.. train.Select(q => (FeaturesOf(q, ambiguity), IsCorrect(q)))]);
        var threshold = LowestThreshold([.. train.Select(q => (model.Probability(FeaturesOf(q, ambiguity)), IsCorrect(q)))]);
        int positives = 0, falseHits = 0, misses = 0;
        foreach (var query in test)
        {
            if (model.Probability(FeaturesOf(query, ambiguity)) < threshold)
            {
                misses++;
            }
            else if (IsCorrect(query))
            {
                positives++;
            }
            else
            {
                falseHits++;
            }
        }
        return (baseline, new CacheEvalRow("classifier", threshold, positives, falseHits, misses), baselineTrain.Threshold, threshold);
    }

    /// <summary>
    /// The held-out evaluation with every choice made on the training half by inner <paramref name="folds"/>-fold
    /// cross-validation, so the held-out half is only scored: for each of <paramref name="options"/> (ways to choose a
    /// query's candidate and describe it, e.g. rerank weights), a model is fitted on all folds but one and scores the
    /// one left out, which gives every training query an out-of-fold probability; the probability threshold is the
    /// lowest (0.001 steps) with out-of-fold false hits ≤ 1% of the training half, and the option kept is the one with
    /// the most out-of-fold positives at its threshold (the first on a tie). The model fitted on the whole training
    /// half is then scored on the held-out half at that threshold. Out-of-fold probabilities are those of a model that
    /// has not seen the query, as the held-out half's are, so the threshold is not biased by the model's fit to its own
    /// training data, which a threshold picked on in-sample probabilities is.
    /// </summary>
    public static (CacheEvalRow Test, double Threshold, int Option) EvaluateCrossValidated(
        IReadOnlyList<EvaluatedQuery> queries, int seed, IReadOnlyList<Func<EvaluatedQuery, (string Matched, double[] Features)>> options, int folds = 5)
    {
        var (train, test) = CacheEvaluation.Halves(queries, seed);
        (double Threshold, int Positives, int Option) chosen = (1, -1, 0);
        for (var option = 0; option < options.Count; option++)
        {
            var examples = train.Select(q => options[option](q) is var (matched, features) ? (features, Correct: matched == q.Expected) : default).ToArray();
            var outOfFold = new (double Probability, bool Correct)[examples.Length];
            for (var fold = 0; fold < folds; fold++)
            {
                var model = Train([.. examples.Where((_, i) => i % folds != fold)]);
                for (var i = fold; i < examples.Length; i += folds)
                {
                    outOfFold[i] = (model.Probability(examples[i].features), examples[i].Correct);
                }
            }
            var threshold = LowestThreshold(outOfFold);
            var positives = outOfFold.Count(s => s.Probability >= threshold && s.Correct);
            if (positives > chosen.Positives)
            {
                chosen = (threshold, positives, option);
            }
        }
        var describe = options[chosen.Option];
        var final = Train([.. train.Select(q => describe(q) is var (matched, features) ? (features, matched == q.Expected) : default)]);
        int hits = 0, falseHits = 0, misses = 0;
        foreach (var query in test)
        {
            var (matched, features) = describe(query);
            if (final.Probability(features) < chosen.Threshold)
            {
                misses++;
            }
            else if (matched == query.Expected)
            {
                hits++;
            }
            else
            {
                falseHits++;
            }
        }
        return (new CacheEvalRow("classifier", chosen.Threshold, hits, falseHits, misses), chosen.Threshold, chosen.Option);
    }

    /// <summary>
    /// <see cref="EvaluateCrossValidated"/> with one model over every candidate of a query instead of the chosen one:
    /// each option describes all of a query's candidates (one feature vector each, in candidate order); the model learns
    /// whether a candidate is the query's own cached prompt from every (query, candidate) pair of the training folds, a
    /// query is answered by its candidate of highest probability, and a hit needs that probability at or above the
    /// threshold. Folds are split by query, so a query's candidates are never on both sides. The threshold (≤ 1%
    /// out-of-fold false hits among the training queries) and the option are chosen as there; the held-out half is
    /// only scored.
    /// </summary>
    public static (CacheEvalRow Test, double Threshold, int Option) EvaluateCandidatesCrossValidated(
        IReadOnlyList<EvaluatedQuery> queries, int seed, IReadOnlyList<Func<EvaluatedQuery, double[][]>> options, int folds = 5)
    {
        var (train, test) = CacheEvaluation.Halves(queries, seed);
        (double Threshold, int Positives, int Option) chosen = (1, -1, 0);
        for (var option = 0; option < options.Count; option++)
        {
            var described = train.Select(q => options[option](q)).ToArray();
            var outOfFold = new (double Probability, bool Correct)[train.Count];
            for (var fold = 0; fold < folds; fold++)
            {
                var model = Train([.. PairsOf(train, described, i => i % folds != fold)]);
                for (var i = fold; i < train.Count; i += folds)
                {
                    outOfFold[i] = model.Choose(train[i], described[i]);
                }
            }
            var threshold = LowestThreshold(outOfFold);
            var positives = outOfFold.Count(s => s.Probability >= threshold && s.Correct);
            if (positives > chosen.Positives)
            {
                chosen = (threshold, positives, option);
            }
        }
        var describe = options[chosen.Option];
        var final = Train([.. PairsOf(train, [.. train.Select(describe)], _ => true)]);
        int hits = 0, falseHits = 0, misses = 0;
        foreach (var query in test)
        {
            var (probability, correct) = final.Choose(query, describe(query));
            _ = probability < chosen.Threshold ? misses++ : correct ? hits++ : falseHits++;
        }
        return (new CacheEvalRow("candidate classifier", chosen.Threshold, hits, falseHits, misses), chosen.Threshold, chosen.Option);
    }

    /// <summary>The query's candidate of highest probability (the first on a tie): its probability and whether it is the query's own cached prompt.</summary>
    private (double Probability, bool Correct) Choose(EvaluatedQuery query, double[][] candidates)
    {
        var (best, probability) = (0, double.NegativeInfinity);
        for (var c = 0; c < candidates.Length; c++)
        {
            var p = Probability(candidates[c]);
            if (p > probability)
            {
                (best, probability) = (c, p);
            }
        }
        return (probability, query.Candidates[best].Text == query.Expected);
    }

    private static IEnumerable<(double[] Features, bool Correct)> PairsOf(List<EvaluatedQuery> queries, double[][][] described, Func<int, bool> include)
    {
        for (var i = 0; i < queries.Count; i++)
        {
            if (include(i))
            {
                for (var c = 0; c < described[i].Length; c++)
                {
                    yield return (described[i][c], queries[i].Candidates[c].Text == queries[i].Expected);
                }
            }
        }
    }

    /// <summary>The lowest probability threshold (0.001 steps, scanned down from 1) whose false hits stay at most 1% of <paramref name="scores"/>.</summary>
    private static double LowestThreshold((double Probability, bool Correct)[] scores)
    {
        var threshold = 1.0;
        for (var step = 1000; step >= 0; step--)
        {
            var t = step / 1000.0;
            if (scores.Count(s => s.Probability >= t && !s.Correct) > 0.01 * scores.Length)
            {
                break;
            }
            threshold = t;
        }
        return threshold;
    }

    private static bool IsCorrect(EvaluatedQuery query) => string.Equals(query.Matched, query.Expected, StringComparison.Ordinal);
}
