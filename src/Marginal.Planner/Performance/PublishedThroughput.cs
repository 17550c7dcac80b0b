using Marginal.Planner.Hardware;
using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Performance;

/// <summary>One published serving throughput result (Performance/published-throughput.yaml), with its source and date.</summary>
public sealed class PublishedResult
{
    public string Id { get; set; } = "";

    /// <summary>fit: used to fit the model's free parameters; predict: only predicted. Fixed before fitting (see the file).</summary>
    public string Set { get; set; } = "";

    public string Model { get; set; } = "";
    public string Accelerator { get; set; } = "";

    /// <summary>Accelerators the published figure is for, all together.</summary>
    public int Gpus { get; set; }

    /// <summary>Tensor-parallel degree of one replica as published; null: not stated (the model picks the smallest group that fits).</summary>
    public int? TensorParallel { get; set; }

    public string Precision { get; set; } = "";
    public string KvPrecision { get; set; } = "";
    public int InputTokens { get; set; }
    public int? OutputTokens { get; set; }

    /// <summary>"decode": prefill ran elsewhere (disaggregated); null: the accelerators did both.</summary>
    public string? Phase { get; set; }

    /// <summary>Most sequences the serving engine was allowed to run together, where the source states it.</summary>
    public int? MaxBatch { get; set; }

    public string Constraint { get; set; } = "";
    public double OutputTokensPerSecond { get; set; }
    public string Source { get; set; } = "";
    public string Url { get; set; } = "";
    public string AsOf { get; set; } = "";
}

/// <summary>The published results and what the model predicts for each.</summary>
public static class PublishedThroughput
{
    private sealed class File
    {
        public List<PublishedResult> Rows { get; set; } = [];
    }

    private static readonly Lazy<IReadOnlyList<PublishedResult>> Shipped = new(() =>
        ScenarioLoader.Read<File>(EmbeddedText.Read("Marginal.Planner.Performance.published-throughput.yaml"), "published-throughput.yaml").Rows);

    public static IReadOnlyList<PublishedResult> Results => Shipped.Value;

    /// <summary>
    /// The model's output tokens per second for <paramref name="result"/>'s setup, on all its accelerators: the replica of the
    /// published tensor-parallel degree at its own best batch (no latency target: these are maximum-throughput figures),
    /// times the replicas. Null when the model does not fit.
    /// </summary>
    public static double? Predict(PublishedResult result, PerformanceConfig performance, IReadOnlyDictionary<string, double>? softwareEfficiency = null)
    {
        var accelerator = AcceleratorCatalogue.Shipped[result.Accelerator];
        if (softwareEfficiency is not null && softwareEfficiency.TryGetValue(result.Accelerator, out var software))
        {
            accelerator = accelerator.WithSoftwareEfficiency(software);
        }
        var shape = ModelCatalogue.Shipped[result.Model];
        // Decode-only figures state no output length: the sequences are taken to hold their input only.
        var load = shape.Load(result.Precision, result.KvPrecision, result.InputTokens, result.OutputTokens ?? 0) with { DecodeOnly = result.Phase == "decode" };
        if (result.OutputTokens is null)
        {
            load = load with { ContextTokens = result.InputTokens };
        }
        var config = result.MaxBatch is { } cap && cap < performance.MaxBatch ? Copy(performance, cap) : performance;
        var estimate = PerformanceModel.Estimate(load, accelerator, result.Precision, config, 1, ServiceLevel.None, result.TensorParallel);
        return estimate is null ? null : estimate.OutputTokensPerGpuHour / 3600 * result.Gpus;
    }

    private static PerformanceConfig Copy(PerformanceConfig p, int maxBatch) => new()
    {
        ComputeEfficiency = p.ComputeEfficiency, BandwidthEfficiency = p.BandwidthEfficiency, MemoryUtilisation = p.MemoryUtilisation,
        AllReduceCost = p.AllReduceCost, MaxBatch = maxBatch,
    };
}

/// <summary>
/// Fits the performance model's free parameters (compute efficiency, bandwidth efficiency, all-reduce cost, the software
/// efficiency of each non-NVIDIA accelerator in the rows, and the largest batch from a short list) to published results by
/// least squares on the log of predicted / published: Nelder-Mead over the continuous parameters (efficiencies kept in
/// (0, 1) through a logistic map, the cost positive through exp), once per batch limit. Memory utilisation is not fitted:
/// it stays at its documented default. NVIDIA's parts are the reference (software efficiency 1).
/// </summary>
public static class PerformanceCalibration
{
    /// <summary>Batch limits tried (running sequences per replica).</summary>
    public static readonly int[] BatchLimits = [256, 512, 1024, 2048, 4096];

    /// <summary>The fitted parameters and the root-mean-square log error on the rows fitted.</summary>
    public sealed record Fit(PerformanceConfig Performance, IReadOnlyDictionary<string, double> SoftwareEfficiency, double RmsLogError);

    public static Fit Run(IReadOnlyList<PublishedResult> rows)
    {
        var others = rows.Select(r => r.Accelerator).Distinct().Where(a => AcceleratorCatalogue.Shipped[a].Vendor != "NVIDIA").Order().ToList();
        Dictionary<string, double> Software(double[] x) => others.Select((a, i) => (a, Logistic(x[3 + i]))).ToDictionary(p => p.a, p => p.Item2);
        Fit? best = null;
        foreach (var maxBatch in BatchLimits)
        {
            double Loss(double[] x) => Error(rows, Config(x, maxBatch), Software(x));
            var x = NelderMead(Loss, [Logit(0.5), Logit(0.7), Math.Log(0.1), .. others.Select(_ => Logit(0.8))], iterations: 300 * (3 + others.Count));
            var fit = new Fit(Config(x, maxBatch), Software(x), Math.Sqrt(Loss(x) / rows.Count));
            if (best is null || fit.RmsLogError < best.RmsLogError)
            {
                best = fit;
            }
        }
        return best!;
    }

    /// <summary>Sum of squared log errors; a row the model cannot serve counts as a log error of 3 (a factor of 20).</summary>
    public static double Error(IReadOnlyList<PublishedResult> rows, PerformanceConfig performance, IReadOnlyDictionary<string, double>? softwareEfficiency = null)
    {
        var sum = 0.0;
        foreach (var row in rows)
        {
            var e = PublishedThroughput.Predict(row, performance, softwareEfficiency) is { } p ? Math.Log(p / row.OutputTokensPerSecond) : 3;
            sum += e * e;
        }
        return sum;
    }

    private static PerformanceConfig Config(double[] x, int maxBatch) => new()
    {
        ComputeEfficiency = Logistic(x[0]), BandwidthEfficiency = Logistic(x[1]), AllReduceCost = Math.Exp(x[2]), MaxBatch = maxBatch,
    };

    private static double Logistic(double x) => 1 / (1 + Math.Exp(-x));

    private static double Logit(double p) => Math.Log(p / (1 - p));

    /// <summary>Nelder-Mead simplex minimisation (reflection 1, expansion 2, contraction and shrink ½), fixed iteration count.</summary>
    internal static double[] NelderMead(Func<double[], double> f, double[] start, int iterations = 400, double step = 0.5)
    {
        var n = start.Length;
        var simplex = new List<(double[] X, double F)> { (start, f(start)) };
        for (var i = 0; i < n; i++)
        {
            var x = (double[])start.Clone();
            x[i] += step;
            simplex.Add((x, f(x)));
        }
        double[] Along(double[] from, double[] to, double t) => from.Select((v, i) => v + t * (to[i] - v)).ToArray();
        for (var it = 0; it < iterations; it++)
        {
            simplex.Sort((a, b) => a.F.CompareTo(b.F));
            var centroid = Enumerable.Range(0, n).Select(i => simplex.Take(n).Average(s => s.X[i])).ToArray();
            var worst = simplex[n];
            var reflected = Along(worst.X, centroid, 2);
            var fr = f(reflected);
            if (fr < simplex[0].F)
            {
                var expanded = Along(worst.X, centroid, 3);
                var fe = f(expanded);
                simplex[n] = fe < fr ? (expanded, fe) : (reflected, fr);
            }
            else if (fr < simplex[n - 1].F)
            {
                simplex[n] = (reflected, fr);
            }
            else
            {
                var contracted = Along(worst.X, centroid, 0.5);
                var fc = f(contracted);
                if (fc < worst.F)
                {
                    simplex[n] = (contracted, fc);
                }
                else
                {
                    for (var i = 1; i <= n; i++)
                    {
                        var x = Along(simplex[0].X, simplex[i].X, 0.5);
                        simplex[i] = (x, f(x));
                    }
                }
            }
        }
        simplex.Sort((a, b) => a.F.CompareTo(b.F));
        return simplex[0].X;
    }
}
