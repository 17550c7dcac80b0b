namespace Marginal.Lab.Caching;

/// <summary>
/// A non-linear second stage, evaluated on GPTCache's pairs only (not used by the live cache): one hidden layer of
/// tanh units and a logistic output over the standardised features, fitted by full-batch Adam (Kingma and Ba, ICLR 2015,
/// arXiv:1412.6980; β1 0.9, β2 0.999) on the mean log loss plus L2 on the weights (not the biases). The weights start
/// uniform in ±1/√inputs (hidden) and ±1/√hidden (output) from a seeded <see cref="Random"/>, so a fit is deterministic.
/// Unlike <see cref="HitClassifier"/>, it can learn interactions (e.g. a low cosine is fine when the alignment is high).
/// </summary>
public sealed class HitNetwork : IHitModel
{
    /// <summary>Hidden units, Adam steps, step size and L2 of <see cref="Train(IReadOnlyList{ValueTuple{double[], bool}})"/>.</summary>
    public const int Hidden = 8, Steps = 400;

    /// <inheritdoc cref="Hidden"/>
    public const double LearningRate = 0.02, L2 = 1e-3;

    private readonly int _inputs;
    private readonly int _hidden;
    private readonly double[] _mean;
    private readonly double[] _scale;

    /// <summary>The parameters, flat: hidden weights [unit × input], hidden biases, output weights, output bias.</summary>
    private readonly double[] _parameters;

    private HitNetwork(int inputs, int hidden)
    {
        (_inputs, _hidden) = (inputs, hidden);
        (_mean, _scale) = (new double[inputs], new double[inputs]);
        _parameters = new double[(hidden * inputs) + hidden + hidden + 1];
    }

    /// <summary>Fits a network with the default size and schedule (seed 42).</summary>
    public static HitNetwork Train(IReadOnlyList<(double[] Features, bool Correct)> examples) => Train(examples, Hidden, Steps, seed: 42);

    /// <summary>Fits a network of <paramref name="hidden"/> units by <paramref name="steps"/> full-batch Adam steps.</summary>
    public static HitNetwork Train(IReadOnlyList<(double[] Features, bool Correct)> examples, int hidden, int steps, int seed)
    {
        var d = examples[0].Features.Length;
        var model = new HitNetwork(d, hidden);
        var n = examples.Count;
        for (var f = 0; f < d; f++)
        {
            var mean = examples.Average(e => e.Features[f]);
            var sd = Math.Sqrt(examples.Average(e => (e.Features[f] - mean) * (e.Features[f] - mean)));
            (model._mean[f], model._scale[f]) = (mean, sd > 1e-9 ? sd : 1);
        }
        var x = new double[n * d];
        var y = new double[n];
        for (var i = 0; i < n; i++)
        {
            model.Standardise(examples[i].Features, x.AsSpan(i * d, d));
            y[i] = examples[i].Correct ? 1 : 0;
        }
        var p = model._parameters;
        var (b1, w2, b2) = (hidden * d, (hidden * d) + hidden, (hidden * d) + (2 * hidden));
        var random = new Random(seed);
        for (var k = 0; k < b1; k++)
        {
            p[k] = ((2 * random.NextDouble()) - 1) / Math.Sqrt(d);
        }
        for (var j = 0; j < hidden; j++)
        {
            p[w2 + j] = ((2 * random.NextDouble()) - 1) / Math.Sqrt(hidden);
        }
        var gradient = new double[p.Length];
        var (m, v) = (new double[p.Length], new double[p.Length]);
        var activations = new double[hidden];
        for (var step = 1; step <= steps; step++)
        {
            Array.Clear(gradient);
            for (var i = 0; i < n; i++)
            {
                var row = x.AsSpan(i * d, d);
                var error = model.Forward(row, activations) - y[i];
                gradient[b2] += error;
                for (var j = 0; j < hidden; j++)
                {
                    gradient[w2 + j] += error * activations[j];
                    var delta = error * p[w2 + j] * (1 - (activations[j] * activations[j]));
                    gradient[b1 + j] += delta;
                    var weights = gradient.AsSpan(j * d, d);
                    for (var f = 0; f < d; f++)
                    {
                        weights[f] += delta * row[f];
                    }
                }
            }
            var (correction1, correction2) = (1 - Math.Pow(0.9, step), 1 - Math.Pow(0.999, step));
            for (var k = 0; k < p.Length; k++)
            {
                var g = (gradient[k] / n) + (k < b1 || (k >= w2 && k < b2) ? L2 * p[k] : 0);
                m[k] = (0.9 * m[k]) + (0.1 * g);
                v[k] = (0.999 * v[k]) + (0.001 * g * g);
                p[k] -= LearningRate * (m[k] / correction1) / (Math.Sqrt(v[k] / correction2) + 1e-8);
            }
        }
        return model;
    }

    /// <inheritdoc />
    public double Probability(double[] features)
    {
        Span<double> row = stackalloc double[_inputs];
        Standardise(features, row);
        return Forward(row, new double[_hidden]);
    }

    private void Standardise(double[] features, Span<double> row)
    {
        for (var f = 0; f < _inputs; f++)
        {
            row[f] = (features[f] - _mean[f]) / _scale[f];
        }
    }

    /// <summary>The output probability for a standardised row; <paramref name="activations"/> receives the hidden units' outputs.</summary>
    private double Forward(ReadOnlySpan<double> row, double[] activations)
    {
        var p = _parameters;
        var (b1, w2) = (_hidden * _inputs, (_hidden * _inputs) + _hidden);
        var z = p[w2 + _hidden];
        for (var j = 0; j < _hidden; j++)
        {
            var a = p[b1 + j];
            var weights = p.AsSpan(j * _inputs, _inputs);
            for (var f = 0; f < _inputs; f++)
            {
                a += weights[f] * row[f];
            }
            // tanh(a) = 1 - 2 / (e^2a + 1): one Exp, cheaper than Math.Tanh here; e^2a overflowing to ∞ gives 1.
            activations[j] = 1 - (2 / (Math.Exp(2 * a) + 1));
            z += p[w2 + j] * activations[j];
        }
        return 1 / (1 + Math.Exp(-z));
    }
}
