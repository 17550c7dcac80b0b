using System.Text.RegularExpressions;
using Marginal.Gateway.Caching;

namespace Marginal.Lab.Caching;

/// <summary>
/// A second-stage check for a semantic candidate, evaluated on GPTCache's pairs only (not used by the live cache): a
/// logistic regression over cheap features of (query, nearest cached prompt) — the cosine, word overlap (Jaccard),
/// the length ratio and the three <see cref="PromptChecks"/> as 0/1 — predicting whether the candidate answers the
/// query. Trained on a seeded half of the queries, its acceptance threshold chosen on that half for at most 1% false
/// hits, and scored on the other half beside the cosine-plus-checks rule tuned the same way.
/// </summary>
public sealed partial class HitClassifier : IHitModel
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
        // The centred features are computed once; every step then does the same arithmetic, in the same order, as
        // Probability(features) and (features[f] - mean) / scale would, so the fit is the same to the last bit.
        var centred = new double[examples.Count * count];
        for (var i = 0; i < examples.Count; i++)
        {
            for (var f = 0; f < count; f++)
            {
                centred[(i * count) + f] = examples[i].Features[f] - model._mean[f];
            }
        }
        var gradient = new double[count + 1];
        for (var step = 0; step < 3000; step++)
        {
            Array.Clear(gradient);
            for (var i = 0; i < examples.Count; i++)
            {
                var row = centred.AsSpan(i * count, count);
                var z = model._weights[count];
                for (var f = 0; f < count; f++)
                {
                    z += model._weights[f] * row[f] / model._scale[f];
                }
                var error = (1 / (1 + Math.Exp(-z))) - (examples[i].Correct ? 1 : 0);
                for (var f = 0; f < count; f++)
                {
                    gradient[f] += error * row[f] / model._scale[f];
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
    /// training data, which a threshold picked on in-sample probabilities is. <paramref name="trainer"/> fits the model
    /// (default: this logistic regression, <see cref="Train"/>).
    /// </summary>
    public static (CacheEvalRow Test, double Threshold, int Option) EvaluateCrossValidated(
        IReadOnlyList<EvaluatedQuery> queries, int seed, IReadOnlyList<Func<EvaluatedQuery, (string Matched, double[] Features)>> options, int folds = 5, HitTrainer? trainer = null) =>
        HeldOutHalf(queries, seed, [.. options.Select(Chosen)], folds, trainer ?? Train, "classifier");

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
        IReadOnlyList<EvaluatedQuery> queries, int seed, IReadOnlyList<Func<EvaluatedQuery, double[][]>> options, int folds = 5, HitTrainer? trainer = null) =>
        HeldOutHalf(queries, seed, [.. options.Select(Every)], folds, trainer ?? Train, "candidate classifier");

    /// <summary>
    /// The k-fold protocol over all queries (<see cref="EvaluateCrossValidated"/>'s model, options and inner choice):
    /// the queries are dealt into <paramref name="folds"/> folds by a seeded shuffle (<see cref="Folds"/>); each fold is
    /// scored by a model fitted on the other folds, with the option and threshold chosen inside those by inner
    /// <paramref name="innerFolds"/>-fold cross-validation (≤ 1% out-of-fold false hits among them). Every query is
    /// scored exactly once, by a model and threshold that never saw it. Returns the pooled row and the lowest and highest
    /// of the folds' thresholds.
    /// </summary>
    public static (CacheEvalRow Row, double LowestThreshold, double HighestThreshold) EvaluateKFold(
        IReadOnlyList<EvaluatedQuery> queries, int seed, IReadOnlyList<Func<EvaluatedQuery, (string Matched, double[] Features)>> options, HitTrainer? trainer = null, int folds = 10, int innerFolds = 5) =>
        KFold(queries, seed, [.. options.Select(Chosen)], trainer ?? Train, folds, innerFolds, "classifier, k-fold");

    /// <summary><see cref="EvaluateKFold"/> with every candidate scored (<see cref="EvaluateCandidatesCrossValidated"/>'s model).</summary>
    public static (CacheEvalRow Row, double LowestThreshold, double HighestThreshold) EvaluateCandidatesKFold(
        IReadOnlyList<EvaluatedQuery> queries, int seed, IReadOnlyList<Func<EvaluatedQuery, double[][]>> options, HitTrainer? trainer = null, int folds = 10, int innerFolds = 5) =>
        KFold(queries, seed, [.. options.Select(Every)], trainer ?? Train, folds, innerFolds, "candidate classifier, k-fold");

    /// <summary>
    /// The fold of each of <paramref name="count"/> queries: positions shuffled by <c>new Random(seed)</c>, then dealt
    /// round-robin, so every query is in exactly one fold and the fold sizes differ by at most one.
    /// </summary>
    public static int[] Folds(int count, int folds, int seed)
    {
        var order = Shuffled(count, seed);
        var fold = new int[count];
        for (var k = 0; k < count; k++)
        {
            fold[order[k]] = k % folds;
        }
        return fold;
    }

    /// <summary>0 .. count − 1 shuffled by <c>new Random(seed)</c>; the inner folds of a k-fold training set follow this order.</summary>
    private static int[] Shuffled(int count, int seed)
    {
        var order = Enumerable.Range(0, count).ToArray();
        new Random(seed).Shuffle(order);
        return order;
    }

    /// <summary>A query described for a model: one feature vector per candidate it may answer with, and whether each is right.</summary>
    private readonly record struct Described(double[][] Features, bool[] Correct);

    private static Func<EvaluatedQuery, Described> Chosen(Func<EvaluatedQuery, (string Matched, double[] Features)> option) =>
        q => option(q) is var (matched, features) ? new([features], [matched == q.Expected]) : default;

    private static Func<EvaluatedQuery, Described> Every(Func<EvaluatedQuery, double[][]> option) =>
        q => new(option(q), [.. q.Candidates.Select(c => c.Text == q.Expected)]);

    private static (CacheEvalRow Test, double Threshold, int Option) HeldOutHalf(
        IReadOnlyList<EvaluatedQuery> queries, int seed, Func<EvaluatedQuery, Described>[] options, int folds, HitTrainer trainer, string variant)
    {
        var (train, test) = CacheEvaluation.Halves(queries, seed);
        var (model, threshold, option) = Fit([.. options.Select(o => train.Select(o).ToArray())], folds, trainer);
        return (Score(variant, model, threshold, test.Select(options[option])), threshold, option);
    }

    private static (CacheEvalRow Row, double LowestThreshold, double HighestThreshold) KFold(
        IReadOnlyList<EvaluatedQuery> queries, int seed, Func<EvaluatedQuery, Described>[] options, HitTrainer trainer, int folds, int innerFolds, string variant)
    {
        // Described once per query and option, then shared by every fold (read-only, so the folds run in parallel).
        var described = options.Select(o => queries.Select(o).ToArray()).ToArray();
        var order = Shuffled(queries.Count, seed);
        var fold = Folds(queries.Count, folds, seed);
        var rows = new (CacheEvalRow Row, double Threshold)[folds];
        Parallel.For(0, folds, k =>
        {
            var train = order.Where(i => fold[i] != k).ToArray();
            var (model, threshold, option) = Fit([.. described.Select(d => train.Select(i => d[i]).ToArray())], innerFolds, trainer);
            rows[k] = (Score(variant, model, threshold, Enumerable.Range(0, queries.Count).Where(i => fold[i] == k).Select(i => described[option][i])), threshold);
        });
        return (new CacheEvalRow(variant, rows.Average(r => r.Threshold), rows.Sum(r => r.Row.Positives), rows.Sum(r => r.Row.FalseHits), rows.Sum(r => r.Row.Misses)),
            rows.Min(r => r.Threshold), rows.Max(r => r.Threshold));
    }

    /// <summary>
    /// Chooses the option and threshold by inner cross-validation over <paramref name="train"/> (indexed [option][query]:
    /// query i is in inner fold i mod <paramref name="folds"/>) and fits the model of the chosen option on all of it.
    /// </summary>
    private static (IHitModel Model, double Threshold, int Option) Fit(Described[][] train, int folds, HitTrainer trainer)
    {
        (double Threshold, int Positives, int Option) chosen = (1, -1, 0);
        for (var option = 0; option < train.Length; option++)
        {
            var described = train[option];
            var outOfFold = new (double Probability, bool Correct)[described.Length];
            for (var fold = 0; fold < folds; fold++)
            {
                var model = trainer([.. PairsOf(described, i => i % folds != fold)]);
                for (var i = fold; i < described.Length; i += folds)
                {
                    outOfFold[i] = Choose(model, described[i]);
                }
            }
            var threshold = LowestThreshold(outOfFold);
            var positives = outOfFold.Count(s => s.Probability >= threshold && s.Correct);
            if (positives > chosen.Positives)
            {
                chosen = (threshold, positives, option);
            }
        }
        return (trainer([.. PairsOf(train[chosen.Option], _ => true)]), chosen.Threshold, chosen.Option);
    }

    private static CacheEvalRow Score(string variant, IHitModel model, double threshold, IEnumerable<Described> test)
    {
        int hits = 0, falseHits = 0, misses = 0;
        foreach (var query in test)
        {
            var (probability, correct) = Choose(model, query);
            _ = probability < threshold ? misses++ : correct ? hits++ : falseHits++;
        }
        return new CacheEvalRow(variant, threshold, hits, falseHits, misses);
    }

    /// <summary>The query's candidate of highest probability (the first on a tie): its probability and whether it is the query's own cached prompt.</summary>
    private static (double Probability, bool Correct) Choose(IHitModel model, Described query)
    {
        var (best, probability) = (0, double.NegativeInfinity);
        for (var c = 0; c < query.Features.Length; c++)
        {
            var p = model.Probability(query.Features[c]);
            if (p > probability)
            {
                (best, probability) = (c, p);
            }
        }
        return (probability, query.Correct[best]);
    }

    private static IEnumerable<(double[] Features, bool Correct)> PairsOf(Described[] queries, Func<int, bool> include)
    {
        for (var i = 0; i < queries.Length; i++)
        {
            if (include(i))
            {
                for (var c = 0; c < queries[i].Features.Length; c++)
                {
                    yield return (queries[i].Features[c], queries[i].Correct[c]);
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
