using System.Numerics.Tensors;

namespace Marginal.Gateway.Routing.Learning;

/// <summary>
/// Matrix factorisation, RouteLLM's best router (Ong et al. 2024, arXiv:2406.18665, section 4.2; lm-sys/RouteLLM
/// <c>routers/matrix_factorization</c>). A prompt's features x (its embedding, then the standardised log length as the
/// 385th input) are projected to <c>h = W x + b</c> (d dimensions); each model m has a learned unit embedding
/// <c>v_m</c>; model m's strength on the prompt is <c>s(m, x) = c · (v_m ⊙ h)</c>. The score is
/// <c>P(strong beats weak) = σ(s(strong, x) − s(weak, x))</c>.
/// With two models the score is linear in x once trained: <c>σ(a · x + β)</c> with <c>u = c ⊙ (v_strong − v_weak)</c>,
/// <c>a = Wᵀu</c> and <c>β = u · b</c>. The file keeps the factors (they are the model); <c>a</c> and <c>β</c> are
/// computed once here, so a score costs one dot product. Immutable and thread-safe.
/// </summary>
public sealed class MfScorer : PromptScorer
{
    /// <summary>The embedding's dimensions; the projection's rows have one more input, the length.</summary>
    public const int EmbeddingDimensions = 384;

    private readonly float[] _collapsed;
    private readonly double _offset;

    /// <param name="projection">W: d rows of 385 inputs (384 embedding dimensions, then the standardised log length).</param>
    /// <param name="bias">b: d numbers.</param>
    /// <param name="strong">The strong model's embedding v_strong (d numbers, unit length).</param>
    /// <param name="weak">The weak model's embedding v_weak (d numbers, unit length).</param>
    /// <param name="classifier">c: d numbers.</param>
    public MfScorer(float[][] projection, float[] bias, float[] strong, float[] weak, float[] classifier)
    {
        var d = bias.Length;
        if (d == 0 || projection.Length != d || strong.Length != d || weak.Length != d || classifier.Length != d
            || projection.Any(row => row.Length != EmbeddingDimensions + 1))
        {
            throw new ArgumentException($"an mf router needs d ≥ 1 projection rows of {EmbeddingDimensions + 1} inputs and d numbers in bias, strong, weak and classifier");
        }
        (Projection, Bias, Strong, Weak, Classifier) = (projection, bias, strong, weak, classifier);
        _collapsed = new float[EmbeddingDimensions + 1];
        for (var r = 0; r < d; r++)
        {
            var u = classifier[r] * (strong[r] - weak[r]);
            TensorPrimitives.MultiplyAdd(projection[r], u, _collapsed, _collapsed);
            _offset += u * bias[r];
        }
    }

    public override string Kind => "mf";

    /// <summary>d, the projection's dimension.</summary>
    public int Dimensions => Bias.Length;

    public float[][] Projection { get; }

    public float[] Bias { get; }

    public float[] Strong { get; }

    public float[] Weak { get; }

    public float[] Classifier { get; }

    public override double Score(ReadOnlySpan<float> embedding, int promptChars) =>
        LogisticScorer.Sigmoid(TensorPrimitives.Dot(embedding, _collapsed.AsSpan(0, EmbeddingDimensions)) + _collapsed[EmbeddingDimensions] * Length.Of(promptChars) + _offset);

    /// <summary>
    /// Fits the factors on pairwise outcomes with the logistic loss: <paramref name="strongWins"/>[i] is 1 when only the
    /// strong model was right on prompt i, 0 when only the weak one was, ½ for a tie. As RouteLLM trains: Adam over
    /// shuffled mini-batches of 64, Gaussian noise of standard deviation <paramref name="noise"/> (RouteLLM's 0.1) added to
    /// the embedding part of x while training, v_m normalised to unit length in the forward pass, no bias in c; plus
    /// <paramref name="l2"/>·|θ|²/2 on every parameter (Adam's weight decay there). RouteLLM runs 100 epochs at a rate of
    /// 3e-4 on Chatbot Arena's 55k+ battles; here 30 at 1e-3 (on the seed-42 MMLU split, 20 and 60 epochs scored within
    /// 0.01 APGR of each other, and fewer steps fit a 2-core machine).
    /// <paramref name="features"/> holds x per prompt (385 numbers: the embedding, then the log length standardised by
    /// <paramref name="length"/>, which the scorer keeps). Single-threaded and seeded: the same inputs give the same factors.
    /// </summary>
    public static MfScorer Train(IReadOnlyList<float[]> features, IReadOnlyList<float> strongWins, LengthTerm length, int dimensions, double l2, int seed,
        double noise = 0.1, int epochs = 30, double rate = 1e-3, int batch = 64)
    {
        const int f = EmbeddingDimensions + 1;
        var d = dimensions;
        // One parameter vector: W (d × f, row-major), then b, c, v_strong, v_weak (d each).
        var (oB, oC, oS, oW) = (d * f, d * f + d, d * f + 2 * d, d * f + 3 * d);
        var theta = new float[d * f + 4 * d];
        var random = new Random(seed);
        // PyTorch's defaults, as RouteLLM starts: Linear weights uniform in ±1/√fan-in, Embedding rows standard normal.
        for (var i = 0; i < d * f; i++)
        {
            theta[i] = (float)((random.NextDouble() * 2 - 1) / Math.Sqrt(f));
        }
        for (var r = 0; r < d; r++)
        {
            theta[oC + r] = (float)((random.NextDouble() * 2 - 1) / Math.Sqrt(d));
            theta[oS + r] = (float)Gaussian(random);
            theta[oW + r] = (float)Gaussian(random);
        }
        var grad = new float[theta.Length];
        var m = new double[theta.Length];
        var v = new double[theta.Length];
        var x = new float[f];
        var h = new float[d];
        var (strongUnit, weakUnit, difference, gDifference) = (new float[d], new float[d], new float[d], new float[d]);
        var order = Enumerable.Range(0, features.Count).ToArray();
        var step = 0;
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            random.Shuffle(order);
            for (var start = 0; start < order.Length; start += batch)
            {
                var count = Math.Min(batch, order.Length - start);
                Array.Clear(grad);
                Array.Clear(gDifference);
                var strongNorm = Unit(theta.AsSpan(oS, d), strongUnit);
                var weakNorm = Unit(theta.AsSpan(oW, d), weakUnit);
                TensorPrimitives.Subtract(strongUnit, weakUnit, difference);
                for (var k = start; k < start + count; k++)
                {
                    var i = order[k];
                    features[i].CopyTo(x, 0);
                    for (var j = 0; noise > 0 && j < EmbeddingDimensions; j++)
                    {
                        x[j] += (float)(noise * Gaussian(random));
                    }
                    double z = 0;
                    for (var r = 0; r < d; r++)
                    {
                        h[r] = TensorPrimitives.Dot(theta.AsSpan(r * f, f), x) + theta[oB + r];
                        z += theta[oC + r] * difference[r] * h[r];
                    }
                    var error = (float)((LogisticScorer.Sigmoid(z) - strongWins[i]) / count);
                    for (var r = 0; r < d; r++)
                    {
                        var c = theta[oC + r];
                        grad[oC + r] += error * difference[r] * h[r];
                        gDifference[r] += error * c * h[r];
                        var gh = error * c * difference[r];
                        grad[oB + r] += gh;
                        var row = grad.AsSpan(r * f, f);
                        TensorPrimitives.MultiplyAdd(x, gh, row, row);
                    }
                }
                // Through the normalisation v̂ = v/|v|: ∂L/∂v = (g − v̂ (v̂ · g)) / |v|, g = ±∂L/∂(v̂_strong − v̂_weak).
                var along = TensorPrimitives.Dot(strongUnit, gDifference);
                for (var r = 0; r < d; r++)
                {
                    grad[oS + r] += (gDifference[r] - strongUnit[r] * along) / strongNorm;
                }
                along = TensorPrimitives.Dot(weakUnit, gDifference);
                for (var r = 0; r < d; r++)
                {
                    grad[oW + r] -= (gDifference[r] - weakUnit[r] * along) / weakNorm;
                }
                step++;
                var (correction1, correction2) = (1 - Math.Pow(0.9, step), 1 - Math.Pow(0.999, step));
                for (var j = 0; j < theta.Length; j++)
                {
                    var g = grad[j] + l2 * theta[j];
                    m[j] = 0.9 * m[j] + 0.1 * g;
                    v[j] = 0.999 * v[j] + 0.001 * g * g;
                    theta[j] -= (float)(rate * (m[j] / correction1) / (Math.Sqrt(v[j] / correction2) + 1e-8));
                }
            }
        }
        Unit(theta.AsSpan(oS, d), strongUnit);
        Unit(theta.AsSpan(oW, d), weakUnit);
        return new MfScorer(
            [.. Enumerable.Range(0, d).Select(r => theta.AsSpan(r * f, f).ToArray())],
            theta.AsSpan(oB, d).ToArray(), strongUnit, weakUnit, theta.AsSpan(oC, d).ToArray()) { Length = length };
    }

    // Writes v/|v| into unit and returns |v|.
    private static float Unit(ReadOnlySpan<float> vector, Span<float> unit)
    {
        var norm = MathF.Max(TensorPrimitives.Norm(vector), 1e-12f);
        TensorPrimitives.Divide(vector, norm, unit);
        return norm;
    }

    // Box–Muller: one standard normal number from two uniform ones.
    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
