using System.Text.Json;
using System.Text.Json.Serialization;
using Marginal.Planner.Projections;
using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Reports;

/// <summary>One option of the recommended portfolio, over the horizon.</summary>
/// <param name="PeakGpus">Most GPUs in any month: owned, contracted or joint-venture GPUs held; for on-demand and spot, the
/// most in use in any one period. Batch work may move anywhere within its day, and renting 60 GPUs for one hour costs
/// what 2.5 for 24 hours do, so a rented peak can be far above what the work needs on average: read it with
/// <paramref name="AverageGpusInUse"/>.</param>
/// <param name="AverageGpusInUse">GPU-hours used over the hours of the horizon: the GPUs the dispatch keeps busy on average.</param>
public sealed record OptionSummary(
    string Name, string Kind, string Supplier, string? Accelerator, double PeakGpus, double AverageGpusInUse, double FinalGpus, double OutputTokensMillions,
    decimal Cost, decimal? CostPerMillion, double? Utilisation, int? GpusPerReplica, int? Batch, string? Bound,
    IReadOnlyList<double> MonthlyOutputTokens, IReadOnlyList<double> MonthlyGpus);

/// <summary>
/// What one option would cost per million output tokens if fully used, for the first workload's interactive class it
/// can serve (else its batch class): (fixed + variable cost per GPU-hour) / output tokens per GPU-hour × 10⁶; an API's
/// token price. Null throughput: the option cannot serve that class (latency target, memory, or spot for interactive).
/// </summary>
public sealed record OptionEconomics(string Name, string Kind, string? Accelerator, string ServedClass, double? OutputTokensPerGpuHour, decimal? UsdPerGpuHour, decimal? CostPerMillionAtFullUse);

/// <summary>
/// The headline figures of a plan, for comparisons. <paramref name="LpBound"/> and <paramref name="LpGap"/>: the LP
/// relaxation's net present cost and the plan's excess over it as a share (nothing can cost less than the bound, so the
/// plan is within that share of the best possible); <paramref name="BestBound"/> and <paramref name="OptimalityGap"/>:
/// the same against the mixed-integer solver's proven bound (docs/planner.md, "Optimiser").
/// </summary>
public sealed record PlanHeadline(
    string Name, decimal NetPresentCost, decimal NetPresentValue, decimal CostPerMillion, double? Utilisation, decimal FixedShare,
    decimal Revenue, decimal Ebitda, decimal Capex, decimal MinimumCash, decimal CapitalNeeded, double? FinalRunwayMonths, decimal PeakEconomicDebt, decimal PeakBalanceSheetDebt,
    decimal LpBound, double? LpGap, decimal BestBound, double? OptimalityGap)
{
    /// <summary>The bounds as one line, the same wherever a plan is printed.</summary>
    public string BoundsLine() =>
        $"LP bound {ReportFormat.Usd(LpBound)} (plan {ReportFormat.Gap(LpGap)} above it) · integer bound {ReportFormat.Usd(BestBound)} (optimality gap {ReportFormat.Gap(OptimalityGap)})";
}

/// <summary>Everything the plan reports, in the shape written as JSON and read by the console and HTML reports.</summary>
public sealed record PlanSummary(
    string Scenario,
    string File,
    PlanHeadline Headline,
    IReadOnlyList<OptionSummary> Portfolio,
    IReadOnlyList<OptionEconomics> Options,
    IReadOnlyList<MonthProjection> Months,
    IReadOnlyList<BreakEven> BreakEvens,
    IReadOnlyList<Optimisation.ShadowPrice> ShadowPrices,
    IReadOnlyList<TornadoBar> Tornado,
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
        var hours = Enumerable.Range(0, plan.Scenario.Months).Sum(plan.Scenario.HoursIn);
        for (var o = 0; o < portfolio.Options.Count; o++)
        {
            var option = portfolio.Options[o];
            var serving = plan.Inputs.Serving[o].FirstOrDefault(s => s is not null);
            options.Add(new OptionSummary(
                option.Option.Name, option.Option.Kind, option.Option.Supplier, option.Option.Config.Accelerator,
                option.Months.Max(m => m.Gpus), option.Months.Sum(m => m.GpuHoursUsed) / hours, option.Months[^1].Gpus, option.TotalOutputTokens, option.TotalCost, option.CostPerMillion,
                option.Utilisation, serving?.GpusPerReplica, serving?.Batch, serving?.Bound,
                option.Months.Select(m => m.OutputTokens).ToList(), option.Months.Select(m => m.Gpus).ToList()));
        }
        var last = projection.Months[^1];
        var headline = new PlanHeadline(
            plan.Scenario.Name, portfolio.NetPresentCost, projection.NetPresentValue, projection.CostPerMillion, projection.Utilisation, projection.FixedShare,
            projection.TotalRevenue, projection.TotalEbitda, projection.TotalCapex, projection.MinimumCash, projection.CapitalNeeded, last.RunwayMonths,
            projection.Months.Max(m => m.BalanceSheet.EconomicDebt), projection.Months.Max(m => m.BalanceSheet.BalanceSheetDebt),
            portfolio.LowerBound, portfolio.LpGap, portfolio.BestBound, portfolio.OptimalityGap);
        return new PlanSummary(plan.Scenario.Name, plan.Scenario.File, headline, options, Economics(plan.Inputs), projection.Months, projection.BreakEvens,
            plan.ShadowPrices, plan.Tornado, portfolio.SolveTime.TotalSeconds, portfolio.Variables, portfolio.Constraints);
    }

    private static List<OptionEconomics> Economics(Optimisation.PlanInputs inputs)
    {
        var result = new List<OptionEconomics>();
        for (var o = 0; o < inputs.Options.Count; o++)
        {
            var option = inputs.Options[o];
            var classes = Enumerable.Range(0, inputs.Classes.Count).OrderBy(c => inputs.Classes[c].Batch).ToList();
            var c = classes.FirstOrDefault(c => inputs.Throughput[o][c] > 0 || inputs.ApiPricePerMillion[o][c] > 0, classes[0]);
            var served = inputs.Classes[c].Name;
            if (option.Kind == "api")
            {
                var price = inputs.ApiPricePerMillion[o][c];
                result.Add(new OptionEconomics(option.Name, option.Kind, null, served, null, null, price > 0 ? price : null));
                continue;
            }
            var throughput = inputs.Throughput[o][c];
            var perHour = option.FixedPerGpuHour + option.VariablePerGpuHour;
            result.Add(new OptionEconomics(option.Name, option.Kind, option.Config.Accelerator, served, throughput > 0 ? throughput : null, perHour,
                throughput > 0 ? perHour / (decimal)throughput * 1_000_000m : null));
        }
        return result;
    }

    /// <summary>
    /// The plan and its comparisons as one JSON document: <c>{"from_ledger": …, "plan": …, "compare": [headlines]}</c>;
    /// <c>from_ledger</c>, what the ledger gave the scenario, only when it did.
    /// </summary>
    /// <summary>The plan as JSON; with <c>--from-ledger</c>, what the ledger gave and the throughput figure used per option and workload.</summary>
    public static string ToJson(PlanSummary plan, IReadOnlyList<PlanHeadline> compare, LedgerScenario? fromLedger = null, IReadOnlyList<ThroughputFigure>? throughput = null) =>
        JsonSerializer.Serialize(new { fromLedger, throughput, plan, compare }, Json);
}
