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
    private const int Features = 6;

    private readonly double[] _weights = new double[Features + 1];
    private readonly double[] _mean = new double[Features];
    private readonly double[] _scale = new double[Features];

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

    /// <summary>Fits the weights by full-batch gradient descent on the log loss (standardised features, 3,000 steps, L2 1e-3).</summary>
    public static HitClassifier Train(IReadOnlyList<(double[] Features, bool Correct)> examples)
    {
        var model = new HitClassifier();
        for (var f = 0; f < Features; f++)
        {
            var mean = examples.Average(e => e.Features[f]);
            var sd = Math.Sqrt(examples.Average(e => (e.Features[f] - mean) * (e.Features[f] - mean)));
            (model._mean[f], model._scale[f]) = (mean, sd > 1e-9 ? sd : 1);
        }
        var gradient = new double[Features + 1];
        for (var step = 0; step < 3000; step++)
        {
            Array.Clear(gradient);
            foreach (var (features, correct) in examples)
            {
                var error = model.Probability(features) - (correct ? 1 : 0);
                for (var f = 0; f < Features; f++)
                {
                    gradient[f] += error * (features[f] - model._mean[f]) / model._scale[f];
                }
                gradient[Features] += error;
            }
            for (var f = 0; f <= Features; f++)
            {
                model._weights[f] -= 0.5 * ((gradient[f] / examples.Count) + (f < Features ? 1e-3 * model._weights[f] : 0));
            }
        }
        return model;
    }

    /// <summary>The predicted probability that the candidate answers the query.</summary>
    public double Probability(double[] features)
    {
        var z = _weights[Features];
        for (var f = 0; f < Features; f++)
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
    public static (CacheEvalRow Baseline, CacheEvalRow Classifier, double CosineThreshold, double ProbabilityThreshold) Evaluate(IReadOnlyList<EvaluatedQuery> queries, int seed)
    {
        var order = Enumerable.Range(0, queries.Count).ToArray();
        new Random(seed).Shuffle(order);
        var train = order.Take(queries.Count / 2).Select(i => queries[i]).ToList();
        var test = order.Skip(queries.Count / 2).Select(i => queries[i]).ToList();
        var baselineTrain = CacheEvaluation.BestWithin(train, 0.01, PromptChecks.All, "all checks")!;
        var baseline = CacheEvaluation.Score(test, baselineTrain.Threshold, PromptChecks.All, "all checks");
        var model = Train([.. train.Select(q => (FeaturesOf(q.Query, q.Matched, q.Similarity), IsCorrect(q)))]);
        var trainScores = train.Select(q => (model.Probability(FeaturesOf(q.Query, q.Matched, q.Similarity)), IsCorrect(q))).ToList();
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
            if (model.Probability(FeaturesOf(query.Query, query.Matched, query.Similarity)) < threshold)
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
