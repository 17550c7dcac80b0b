using System.Numerics.Tensors;

namespace Marginal.Gateway.Routing.Learning;

/// <summary>
/// Scores a prompt from its normalised embedding and its length: the higher, the more the strong model is expected to
/// gain over the weak one. A route sends prompts scoring at least its threshold to the strong model. Immutable and
/// thread-safe.
/// </summary>
public abstract class PromptScorer
{
    /// <summary>The method's name as written in model files (<c>logistic</c>, <c>knn</c>).</summary>
    public abstract string Kind { get; }

    /// <summary>How the prompt's length moves the score (none by default).</summary>
    public LengthTerm Length { get; init; } = LengthTerm.None;

    /// <param name="embedding">The prompt's normalised MiniLM embedding.</param>
    /// <param name="promptChars">The prompt's length in characters (the text that was embedded).</param>
    public abstract double Score(ReadOnlySpan<float> embedding, int promptChars);
}

/// <summary>
/// A length feature: <c>weight × (ln(1 + chars) − mean) / scale</c>, mean and scale those of the training prompts. Longer
/// prompts need the strong model more often on RouteLLM's data (prompt length alone scores APGR 0.59 on MMLU and 0.60 on
/// GSM8K; docs/benchmarks.md, "Router"), and unlike the embedding's topic signal this carries over between datasets.
/// </summary>
public readonly record struct LengthTerm(double Weight, double Mean, double Scale)
{
    public static LengthTerm None => new(0, 0, 1);

    public double Of(int chars) => Weight == 0 ? 0 : Weight * Standard(chars);

    public double Standard(int chars) => (Math.Log(1 + chars) - Mean) / Scale;

    /// <summary>The mean and standard deviation of ln(1 + length) over <paramref name="prompts"/>, with weight 1.</summary>
    public static LengthTerm Fit(IEnumerable<string> prompts)
    {
        var logs = prompts.Select(p => Math.Log(1 + p.Length)).ToArray();
        var mean = logs.Average();
        var std = Math.Sqrt(logs.Average(x => (x - mean) * (x - mean)));
        return new LengthTerm(1, mean, std > 0 ? std : 1);
    }
}

/// <summary>
/// Logistic regression: σ(w·x + b + length term), trained with soft targets (1 when only the strong model was right, 0 when only the
/// weak one was, ½ when they agree), so the score estimates how likely the strong call is to pay off.
/// </summary>
public sealed class LogisticScorer(float[] weights, float bias) : PromptScorer
{
    public override string Kind => "logistic";

    public float[] Weights { get; } = weights;

    public float Bias { get; } = bias;

    public override double Score(ReadOnlySpan<float> embedding, int promptChars) => Sigmoid(Logit(embedding, promptChars));

    /// <summary>w·x + b + length term: the score before the sigmoid.</summary>
    public double Logit(ReadOnlySpan<float> embedding, int promptChars) => TensorPrimitives.Dot(embedding, Weights) + Bias + Length.Of(promptChars);

    internal static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));

    /// <summary>
    /// Full-batch gradient descent with Adam (β₁ 0.9, β₂ 0.999) on the mean cross-entropy plus <paramref name="l2"/>·|w|²/2.
    /// Deterministic: weights start at zero.
    /// </summary>
    public static LogisticScorer Train(IReadOnlyList<float[]> x, IReadOnlyList<float> target, double l2, int iterations = 300, double rate = 0.05)
    {
        var n = x.Count;
        var d = x[0].Length;
        var w = new double[d + 1];
        var m = new double[d + 1];
        var v = new double[d + 1];
        var grad = new double[d + 1];
        var wf = new float[d];
        for (var t = 1; t <= iterations; t++)
        {
            Array.Clear(grad);
            for (var j = 0; j < d; j++)
            {
                wf[j] = (float)w[j];
            }
            for (var i = 0; i < n; i++)
            {
                var error = Sigmoid(TensorPrimitives.Dot(x[i], wf) + w[d]) - target[i];
                var row = x[i];
                for (var j = 0; j < d; j++)
                {
                    grad[j] += error * row[j];
                }
                grad[d] += error;
            }
            for (var j = 0; j <= d; j++)
            {
                var g = grad[j] / n + (j < d ? l2 * w[j] : 0);
                m[j] = 0.9 * m[j] + 0.1 * g;
                v[j] = 0.999 * v[j] + 0.001 * g * g;
                var mHat = m[j] / (1 - Math.Pow(0.9, t));
                var vHat = v[j] / (1 - Math.Pow(0.999, t));
                w[j] -= rate * mHat / (Math.Sqrt(vHat) + 1e-8);
            }
        }
        return new LogisticScorer([.. w.Take(d).Select(a => (float)a)], (float)w[d]);
    }
}

/// <summary>
/// k nearest neighbours by cosine similarity: the mean gain (−1, 0 or 1, as Marginal.Lab's <c>RoutingExample</c> labels it) of the k labelled
/// prompts most like this one, plus the length term. Exact search over every example with SIMD dot products.
/// </summary>
public sealed class KnnScorer(IReadOnlyList<float[]> vectors, IReadOnlyList<float> gains, int k) : PromptScorer
{
    public override string Kind => "knn";

    public IReadOnlyList<float[]> Vectors { get; } = vectors;

    public IReadOnlyList<float> Gains { get; } = gains;

    public int K { get; } = k;

    public override double Score(ReadOnlySpan<float> embedding, int promptChars) => Neighbourhood(embedding) + Length.Of(promptChars);

    private double Neighbourhood(ReadOnlySpan<float> embedding)
    {
        var k = Math.Min(K, Vectors.Count);
        if (k == 0)
        {
            return 0;
        }
        // The k best so far, kept as a small sorted array: k is tens, the examples thousands.
        Span<float> best = k <= 256 ? stackalloc float[k] : new float[k];
        Span<int> index = k <= 256 ? stackalloc int[k] : new int[k];
        best.Fill(float.NegativeInfinity);
        for (var i = 0; i < Vectors.Count; i++)
        {
            var similarity = TensorPrimitives.Dot(embedding, Vectors[i]);
            if (similarity <= best[k - 1])
            {
                continue;
            }
            var j = k - 1;
            while (j > 0 && best[j - 1] < similarity)
            {
                best[j] = best[j - 1];
                index[j] = index[j - 1];
                j--;
            }
            best[j] = similarity;
            index[j] = i;
        }
        double sum = 0;
        for (var j = 0; j < k; j++)
        {
            sum += Gains[index[j]];
        }
        return sum / k;
    }
}

/// <summary>
/// A blend of the two: <c>knn_weight × knn / knn_scale + (1 − knn_weight) × logit / logit_scale</c>. kNN carries the
/// topic (which subjects the weak model is bad at), logistic regression the length and a smoother view of the embedding;
/// each is divided by the spread of its scores on the validation prompts so the weight means what it says.
/// </summary>
public sealed class BlendScorer(KnnScorer knn, LogisticScorer logistic, double knnWeight, double knnScale, double logitScale) : PromptScorer
{
    public override string Kind => "blend";

    public KnnScorer Knn { get; } = knn;

    public LogisticScorer Logistic { get; } = logistic;

    public double KnnWeight { get; } = knnWeight;

    public double KnnScale { get; } = knnScale;

    public double LogitScale { get; } = logitScale;

    public override double Score(ReadOnlySpan<float> embedding, int promptChars) =>
        KnnWeight * Knn.Score(embedding, promptChars) / KnnScale + (1 - KnnWeight) * Logistic.Logit(embedding, promptChars) / LogitScale;
}
