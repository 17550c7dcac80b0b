using System.Globalization;
using Marginal.Planner.Hardware;
using Marginal.Planner.Performance;
using Marginal.Planner.Scenarios;
using Xunit.Abstractions;

namespace Marginal.Planner.Tests.Performance;

/// <summary>
/// The performance model against published throughput (Performance/published-throughput.yaml): its free parameters are
/// fitted on the fit rows only, then each predict row is checked against 25% (issue 21's acceptance). That acceptance is
/// not met: the rows beyond it are listed, and explained in docs/planner.md ("Validation"); the test fails if the list changes.
/// </summary>
public sealed class PublishedThroughputTests(ITestOutputHelper output)
{
    private const double Tolerance = 0.25;

    /// <summary>
    /// Predict rows the model misses by more than 25%, each explained in docs/planner.md ("Validation", "Misses"). The test
    /// fails when this list is wrong either way: a new miss, or a row that now comes within 25% (update the docs).
    /// </summary>
    private static readonly string[] KnownMisses =
    [
        "trtllm-llama-3.3-70b-h100-sxm-tp2-5000-500",
        "trtllm-qwen3-235b-a22b-b200-tp8-5000-500",
        "trtllm-qwen3-235b-a22b-h100-sxm-tp8-5000-500",
        "trtllm-qwen3-30b-a3b-b200-tp1-5000-500",
        "trtllm-llama-4-maverick-h200-sxm-tp8-1000-1000",
        "trtllm-llama-4-maverick-h200-sxm-tp8-5000-500",
        "trtllm-llama-3.1-405b-b200-tp4-1000-1000",
        "lmsys-sglang-deepseek-v3-h100-decode",
    ];

    private static readonly Lazy<PerformanceCalibration.Fit> Fitted = new(() =>
        PerformanceCalibration.Run(PublishedThroughput.Results.Where(r => r.Set == "fit").ToList()));

    [Fact]
    public void Table_EveryRowSourcedAndSplit()
    {
        var rows = PublishedThroughput.Results;

        Assert.True(rows.Count >= 12, $"{rows.Count} rows");
        Assert.All(rows, r =>
        {
            Assert.True(r.Set is "fit" or "predict", r.Id);
            Assert.False(string.IsNullOrWhiteSpace(r.Source), r.Id);
            Assert.StartsWith("https://", r.Url);
            Assert.True(Marginal.Planner.Scenarios.ScenarioLoader.IsDate(r.AsOf), r.Id);
            Assert.True(r.OutputTokensPerSecond > 0, r.Id);
            Assert.Contains(r.Model, ModelCatalogue.Shipped.Keys);
        });
        Assert.Contains(rows, r => r.Set == "fit");
        Assert.Contains(rows, r => r.Set == "predict");
        Assert.Equal(rows.Select(r => r.Id).Distinct().Count(), rows.Count);
    }

    [Fact]
    public void Predict_FittedOnTheFitSetOnly_RowsBeyond25PercentAreTheDocumentedMisses()
    {
        var fit = Fitted.Value;
        var p = fit.Performance;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fitted: compute efficiency {p.ComputeEfficiency:0.000}, bandwidth efficiency {p.BandwidthEfficiency:0.000}, all-reduce cost {p.AllReduceCost:0.000}, max batch {p.MaxBatch}, software efficiency {string.Join(", ", fit.SoftwareEfficiency.Select(s => $"{s.Key} {s.Value:0.000}"))}; fit rms log error {fit.RmsLogError:0.000}"));
        var errors = new List<double>();
        var misses = new List<string>();
        foreach (var row in PublishedThroughput.Results)
        {
            var predicted = PublishedThroughput.Predict(row, p, fit.SoftwareEfficiency);
            var error = predicted is { } v ? v / row.OutputTokensPerSecond - 1 : double.NaN;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{row.Set,-7} {row.Id,-55} published {row.OutputTokensPerSecond,9:0} predicted {predicted,9:0} error {error,7:+0.0%;-0.0%}"));
            if (row.Set != "predict")
            {
                continue;
            }
            errors.Add(Math.Abs(error));
            if (!(Math.Abs(error) <= Tolerance))
            {
                misses.Add(row.Id);
            }
        }
        errors.Sort();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"predict set: {errors.Count} rows, median |error| {errors[errors.Count / 2]:0.0%}, {misses.Count} beyond 25%"));

        Assert.Equal(KnownMisses.Order(), misses.Order());
        Assert.True(errors[errors.Count / 2] <= Tolerance, $"median |error| {errors[errors.Count / 2]:P1}");
    }

    [Fact]
    public void Defaults_EqualTheFit()
    {
        var fit = Fitted.Value;

        Assert.Equal(PerformanceDefaults.ComputeEfficiency, fit.Performance.ComputeEfficiency, 0.003);
        Assert.Equal(PerformanceDefaults.BandwidthEfficiency, fit.Performance.BandwidthEfficiency, 0.003);
        Assert.Equal(PerformanceDefaults.AllReduceCost, fit.Performance.AllReduceCost, 0.003);
        Assert.All(fit.SoftwareEfficiency, s => Assert.Equal(s.Value, AcceleratorCatalogue.Shipped[s.Key].SoftwareEfficiency, 0.003));
    }

    /// <summary>
    /// LMSYS (lmsys.org blog, 2025-05-05): DeepSeek-V3 decode on nodes of 8 H100 at 22.3k output tokens/s each, "$0.20 per
    /// 1M output tokens". Here the tokens/s come from the model (hardware, model architecture, the fitted defaults), and
    /// the price is the one LMSYS's figure rests on, $2.00 per H100-hour ($16 a node-hour; 22,300 tok/s gives $0.1993).
    /// The model predicts far fewer tokens/s than LMSYS measured (it has no expert parallelism across nodes: the model's
    /// weights fit no single node, so it takes tensor parallelism over 16 GPUs), so the predicted cost misses $0.20 by more
    /// than the 25% tolerance. The test pins the documented prediction (±2%) and that it misses, so neither the model nor
    /// docs/planner.md can change without the other.
    /// </summary>
    [Fact]
    public void CostPerMillion_LmsysDeepSeekV3_PredictedFromHardwareModelAndPrice()
    {
        var row = PublishedThroughput.Results.Single(r => r.Id == "lmsys-sglang-deepseek-v3-h100-decode");
        var tokensPerSecondPerNode = PublishedThroughput.Predict(row, new PerformanceConfig())!.Value;

        var cost = (double)PerformanceModel.CostPerMillionTokens(8 * 2.00m, tokensPerSecondPerNode);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"predicted {tokensPerSecondPerNode:0} tok/s per node: ${cost:0.000} per 1M output tokens (published $0.20)"));

        Assert.Equal(DocumentedLmsysCost, cost, DocumentedLmsysCost * 0.02);
        Assert.True(Math.Abs(cost / 0.20 - 1) > Tolerance);
    }

    /// <summary>docs/planner.md, "Validation": the model's cost for LMSYS's deployment.</summary>
    private const double DocumentedLmsysCost = 1.102;
}
