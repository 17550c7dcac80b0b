using System.Numerics.Tensors;
using Marginal.Gateway.Routing.Learning;

namespace Marginal.Lab.Routing;

/// <summary>
/// Trains and compares routers over embedded, labelled prompts. Hyper-parameters (k and the length weight for kNN, the
/// L2 weight for logistic regression, whose length weight is fitted with the rest; the projection's dimension and L2 weight
/// for matrix factorisation) are chosen by APGR on a seeded inner validation split of the training part only, then the router is
/// refitted on the whole training part; the evaluation set is never looked at while training.
/// </summary>
public static class RouterTrainer
{
    public static readonly string[] Methods = ["knn", "logistic", "blend", "mf"];
    public static readonly string[] SplitKinds = ["question", "domain"];

    private static readonly int[] Ks = [10, 25, 50, 100, 200, 400, 800];
    private static readonly double[] L2s = [1e-4, 1e-3, 1e-2];
    private static readonly double[] LengthWeights = [0, 0.025, 0.05, 0.1, 0.2];
    private static readonly double[] KnnWeights = [0, 0.2, 0.35, 0.5, 0.65, 0.8, 1];
    private static readonly int[] MfDimensions = [8, 32, 128];
    private static readonly double[] MfL2s = [1e-4, 1e-2];
    private static readonly (int Dimensions, double L2)[] MfGrid = [.. MfDimensions.SelectMany(d => MfL2s.Select(l2 => (d, l2)))];

    /// <summary>
    /// A seeded split: <paramref name="holdout"/> of the questions (or of the domains, so no domain is on both sides)
    /// go to the test part. Deterministic for a seed.
    /// </summary>
    public static (int[] Train, int[] Test) Split(IReadOnlyList<RoutingExample> examples, double holdout, int seed, string by = "question")
    {
        var random = new Random(seed);
        if (by == "domain")
        {
            var domains = examples.Select(e => e.Domain).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
            random.Shuffle(domains);
            var test = domains.Take((int)Math.Round(domains.Length * holdout)).ToHashSet(StringComparer.Ordinal);
            return ([.. Enumerable.Range(0, examples.Count).Where(i => !test.Contains(examples[i].Domain))],
                    [.. Enumerable.Range(0, examples.Count).Where(i => test.Contains(examples[i].Domain))]);
        }
        var order = Enumerable.Range(0, examples.Count).ToArray();
        random.Shuffle(order);
        var cut = (int)Math.Round(order.Length * holdout);
        return ([.. order[cut..].Order()], [.. order[..cut].Order()]);
    }

    /// <summary>Trains <paramref name="method"/> (one of <see cref="Methods"/>) on the given examples and their embeddings.</summary>
    public static PromptScorer Train(string method, IReadOnlyList<RoutingExample> examples, IReadOnlyList<float[]> vectors, int seed = 42)
    {
        var (fit, validate) = Split(examples, 0.2, seed);
        var fitExamples = fit.Select(i => examples[i]).ToArray();
        var fitVectors = fit.Select(i => vectors[i]).ToArray();
        var valExamples = validate.Select(i => examples[i]).ToArray();
        var valVectors = validate.Select(i => vectors[i]).ToArray();
        switch (method)
        {
            case "knn":
            {
                var (k, weight) = SelectKnn(fitExamples, fitVectors, valExamples, valVectors);
                return Knn(examples, vectors, k, weight);
            }
            case "logistic":
            {
                var fitTargets = fitExamples.Select(Target).ToArray();
                var best = L2s.MaxBy(l2 => Evaluate(TrainLogistic(fitExamples, fitVectors, fitTargets, l2), valExamples, valVectors).Apgr);
                return TrainLogistic(examples, vectors, [.. examples.Select(Target)], best);
            }
            case "blend":
            {
                // Each part's hyper-parameters as above, then the mix by validation APGR, then both refitted on everything.
                var (k, weight) = SelectKnn(fitExamples, fitVectors, valExamples, valVectors);
                var fitTargets = fitExamples.Select(Target).ToArray();
                var l2 = L2s.MaxBy(l2 => Evaluate(TrainLogistic(fitExamples, fitVectors, fitTargets, l2), valExamples, valVectors).Apgr);
                var knn = Knn(fitExamples, fitVectors, k, weight);
                var logistic = TrainLogistic(fitExamples, fitVectors, fitTargets, l2);
                var knnScores = valVectors.Select((v, i) => knn.Score(v, valExamples[i].Prompt.Length)).ToArray();
                var logits = valVectors.Select((v, i) => logistic.Logit(v, valExamples[i].Prompt.Length)).ToArray();
                var (knnScale, logitScale) = (Spread(knnScores), Spread(logits));
                var mix = KnnWeights.MaxBy(a => Evaluate(valExamples, [.. knnScores.Select((s, i) => a * s / knnScale + (1 - a) * logits[i] / logitScale)]).Apgr);
                return new BlendScorer(Knn(examples, vectors, k, weight), TrainLogistic(examples, vectors, [.. examples.Select(Target)], l2), mix, knnScale, logitScale);
            }
            case "mf":
            {
                // Each setting trained alone and seeded, so the parallel grid gives the same choice on every run.
                var apgr = new double[MfGrid.Length];
                Parallel.For(0, MfGrid.Length, g => apgr[g] = Evaluate(TrainMf(fitExamples, fitVectors, MfGrid[g].Dimensions, MfGrid[g].L2, seed), valExamples, valVectors).Apgr);
                var best = MfGrid[Array.IndexOf(apgr, apgr.Max())];
                return TrainMf(examples, vectors, best.Dimensions, best.L2, seed);
            }
            default:
                throw new ArgumentException($"unknown method '{method}' (allowed: {string.Join(", ", Methods)})", nameof(method));
        }
    }

    private static double Spread(double[] scores)
    {
        var mean = scores.Average();
        var std = Math.Sqrt(scores.Average(s => (s - mean) * (s - mean)));
        return std > 0 ? std : 1;
    }

    // k and the length weight by validation APGR; the neighbours of each validation prompt are searched once.
    private static (int K, double LengthWeight) SelectKnn(RoutingExample[] fitExamples, float[][] fitVectors, RoutingExample[] valExamples, float[][] valVectors)
    {
        var neighbours = Neighbours(fitVectors, valVectors, Ks.Max());
        var fitLength = LengthTerm.Fit(fitExamples.Select(e => e.Prompt));
        return Ks.SelectMany(k => LengthWeights.Select(w => (k, w))).MaxBy(p => Evaluate(valExamples,
            [.. neighbours.Select((row, q) => row.Take(p.k).Average(j => (double)fitExamples[j].Gain) + p.w * fitLength.Standard(valExamples[q].Prompt.Length))]).Apgr);
    }

    private static KnnScorer Knn(IReadOnlyList<RoutingExample> examples, IReadOnlyList<float[]> vectors, int k, double lengthWeight) =>
        new([.. vectors], [.. examples.Select(e => e.Gain)], k) { Length = LengthTerm.Fit(examples.Select(e => e.Prompt)) with { Weight = lengthWeight } };

    // Logistic regression over the embedding plus the standardised log length as a 385th feature.
    private static LogisticScorer TrainLogistic(IReadOnlyList<RoutingExample> examples, IReadOnlyList<float[]> vectors, float[] targets, double l2)
    {
        var length = LengthTerm.Fit(examples.Select(e => e.Prompt));
        var features = vectors.Select((v, i) => (float[])[.. v, (float)length.Standard(examples[i].Prompt.Length)]).ToArray();
        var fitted = LogisticScorer.Train(features, targets, l2);
        return new LogisticScorer(fitted.Weights[..^1], fitted.Bias) { Length = length with { Weight = fitted.Weights[^1] } };
    }

    // Matrix factorisation on pairwise outcomes, the length as the 385th input. A tie (both models right, or both wrong)
    // counts as half a win for each, as Bradley–Terry ratings count ties: RouteLLM drops ties from its preference data, but
    // on correctness data they are most of the prompts (77% of MMLU's), and dropping them scored APGR 0.54–0.60 on held-out
    // MMLU (seed 42, dimension 64, eight noise, rate, epoch and L2 settings) against 0.631 with them (docs/benchmarks.md, "Router").
    private static MfScorer TrainMf(IReadOnlyList<RoutingExample> examples, IReadOnlyList<float[]> vectors, int dimensions, double l2, int seed)
    {
        var length = LengthTerm.Fit(examples.Select(e => e.Prompt));
        var features = vectors.Select((v, i) => (float[])[.. v, (float)length.Standard(examples[i].Prompt.Length)]).ToArray();
        return MfScorer.Train(features, [.. examples.Select(Target)], length, dimensions, l2, seed);
    }

    /// <summary>The soft target of logistic regression: (gain + 1) / 2.</summary>
    private static float Target(RoutingExample example) => (example.Gain + 1) / 2;

    public static RouterEvaluation Evaluate(PromptScorer scorer, IReadOnlyList<RoutingExample> examples, IReadOnlyList<float[]> vectors) =>
        Evaluate(examples, [.. vectors.Select((v, i) => scorer.Score(v, examples[i].Prompt.Length))]);

    public static RouterEvaluation Evaluate(IReadOnlyList<RoutingExample> examples, IReadOnlyList<double> scores) =>
        RouterMetrics.Evaluate(scores, [.. examples.Select(e => e.WeakCorrect)], [.. examples.Select(e => e.StrongCorrect)]);

    /// <summary>A router that reads only the prompt's length (longer → strong first): the baseline the length term starts from.</summary>
    public static RouterEvaluation EvaluateLength(IReadOnlyList<RoutingExample> examples) =>
        Evaluate(examples, [.. examples.Select(e => (double)e.Prompt.Length)]);

    /// <summary>The random router: seeded uniform scores (its expected APGR is 0.5, CPT(x) is x).</summary>
    public static RouterEvaluation EvaluateRandom(IReadOnlyList<RoutingExample> examples, int seed)
    {
        var random = new Random(seed);
        return Evaluate(examples, [.. examples.Select(_ => random.NextDouble())]);
    }

    // For each query, the indices of its `k` most similar examples, best first.
    private static int[][] Neighbours(float[][] examples, float[][] queries, int k)
    {
        var result = new int[queries.Length][];
        Parallel.For(0, queries.Length, q =>
        {
            var similarities = new float[examples.Length];
            for (var i = 0; i < examples.Length; i++)
            {
                similarities[i] = TensorPrimitives.Dot(queries[q], examples[i]);
            }
            var order = Enumerable.Range(0, examples.Length).ToArray();
            Array.Sort(similarities, order);
            result[q] = [.. order.Reverse().Take(k)];
        });
        return result;
    }
}
