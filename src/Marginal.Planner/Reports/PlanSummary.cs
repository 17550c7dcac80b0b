using System.Text.Json;
using System.Text.Json.Serialization;
using Marginal.Planner.Projections;

namespace Marginal.Planner.Reports;

/// <summary>One option of the recommended portfolio, over the horizon.</summary>
public sealed record OptionSummary(
    string Name, string Kind, string Supplier, string? Accelerator, double PeakGpus, double FinalGpus, double OutputTokensMillions,
    decimal Cost, decimal? CostPerMillion, double? Utilisation, int? GpusPerReplica, int? Batch, string? Bound,
    IReadOnlyList<double> MonthlyOutputTokens, IReadOnlyList<double> MonthlyGpus);

/// <summary>The headline figures of a plan, for comparisons.</summary>
public sealed record PlanHeadline(
    string Name, decimal NetPresentCost, decimal NetPresentValue, decimal CostPerMillion, double? Utilisation, decimal FixedShare,
    decimal Revenue, decimal Ebitda, decimal Capex, decimal MinimumCash, decimal CapitalNeeded, double? FinalRunwayMonths, decimal PeakEconomicDebt, decimal PeakBalanceSheetDebt);

/// <summary>Everything the plan reports, in the shape written as JSON and read by the console and HTML reports.</summary>
public sealed record PlanSummary(
    string Scenario,
    string File,
    PlanHeadline Headline,
    IReadOnlyList<OptionSummary> Portfolio,
    IReadOnlyList<MonthProjection> Months,
    IReadOnlyList<BreakEven> BreakEvens,
    IReadOnlyList<Optimisation.ShadowPrice> ShadowPrices,
    IReadOnlyList<TornadoBar> Tornado,
    decimal RoundingGap,
    double SolveSeconds,
    int Variables,
    int Constraints)
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static PlanSummary Of(PlanResult plan)
    {
        var projection = plan.Projection;
        var portfolio = plan.Portfolio;
        var options = new List<OptionSummary>();
        for (var o = 0; o < portfolio.Options.Count; o++)
        {
            var option = portfolio.Options[o];
            var serving = plan.Inputs.Serving[o].FirstOrDefault(s => s is not null);
            options.Add(new OptionSummary(
                option.Option.Name, option.Option.Kind, option.Option.Supplier, option.Option.Config.Accelerator,
                option.Months.Max(m => m.Gpus), option.Months[^1].Gpus, option.TotalOutputTokens, option.TotalCost, option.CostPerMillion,
                option.Utilisation, serving?.GpusPerReplica, serving?.Batch, serving?.Bound,
                option.Months.Select(m => m.OutputTokens).ToList(), option.Months.Select(m => m.Gpus).ToList()));
        }
        var last = projection.Months[^1];
        var headline = new PlanHeadline(
            plan.Scenario.Name, portfolio.NetPresentCost, projection.NetPresentValue, projection.CostPerMillion, projection.Utilisation, projection.FixedShare,
            projection.TotalRevenue, projection.TotalEbitda, projection.TotalCapex, projection.MinimumCash, projection.CapitalNeeded, last.RunwayMonths,
            projection.Months.Max(m => m.BalanceSheet.EconomicDebt), projection.Months.Max(m => m.BalanceSheet.BalanceSheetDebt));
        return new PlanSummary(plan.Scenario.Name, plan.Scenario.File, headline, options, projection.Months, projection.BreakEvens,
            plan.ShadowPrices, plan.Tornado, portfolio.RoundingGap, portfolio.SolveTime.TotalSeconds, portfolio.Variables, portfolio.Constraints);
    }

    /// <summary>The plan and its comparisons as one JSON document: <c>{"plan": …, "compare": [headlines]}</c>.</summary>
    public static string ToJson(PlanSummary plan, IReadOnlyList<PlanHeadline> compare) =>
        JsonSerializer.Serialize(new { plan, compare }, Json);
}
