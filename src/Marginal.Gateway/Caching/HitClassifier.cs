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
        var trainScores = train.Select(q => (model.Probability(FeaturesOf(q, ambiguity)), IsCorrect(q))).ToList();
        var threshold = 1.0;
        for (var step = 1000; step >= 0; step--)
        {
            var t = step / 1000.0;
            if (trainScores.Count(s => s.Item1 >= t && !s.Item2) > 0.01 * train.Count)
            {
                break;
            }
            threshold = t;
        }
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

    private static bool IsCorrect(EvaluatedQuery query) => string.Equals(query.Matched, query.Expected, StringComparison.Ordinal);
}
