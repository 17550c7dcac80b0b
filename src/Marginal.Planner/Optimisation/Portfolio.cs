namespace Marginal.Planner.Optimisation;

/// <summary>One supply option in one plan month, as the optimiser chose it. Money is USD, undiscounted.</summary>
/// <param name="Gpus">Accelerators available this month (owned and arrived, contracted, joint-venture share; rented: the peak in use).</param>
/// <param name="GpusBought">Accelerators ordered this month (own), or contracted this month (reserved, joint venture share).</param>
/// <param name="GpuHoursAvailable">Accelerator-hours the option could serve this month (0 for on-demand, spot and API: no idle capacity is paid).</param>
/// <param name="GpuHoursUsed">Accelerator-hours the dispatch used.</param>
/// <param name="OutputTokens">Output tokens served, millions.</param>
/// <param name="Capex">Cash spent on purchases (own) or capital contributions (joint venture).</param>
/// <param name="FixedCost">Cost that does not move with use: colocation and operations, take-or-pay floors, joint-venture opex.</param>
/// <param name="VariableCost">Cost that moves with use: power, rented GPU-hours above the floor, API tokens.</param>
/// <param name="Depreciation">Straight-line depreciation of what is owned (and of the joint-venture share), a P&amp;L cost with no cash.</param>
public sealed record OptionMonth(
    double Gpus, double GpusBought, double GpuHoursAvailable, double GpuHoursUsed, double OutputTokens,
    decimal Capex, decimal FixedCost, decimal VariableCost, decimal Depreciation)
{
    /// <summary>Used over available accelerator-hours; null where nothing idle is paid for.</summary>
    public double? Utilisation => GpuHoursAvailable > 0 ? GpuHoursUsed / GpuHoursAvailable : null;
}

/// <summary>A chosen option over the horizon.</summary>
public sealed record OptionPlan(SupplyOption Option, IReadOnlyList<OptionMonth> Months)
{
    public double TotalOutputTokens => Months.Sum(m => m.OutputTokens);

    /// <summary>Cash and accrued cost over the horizon, USD: capex is counted through depreciation, not at purchase.</summary>
    public decimal TotalCost => Months.Sum(m => m.FixedCost + m.VariableCost + m.Depreciation);

    public double? Utilisation
    {
        get
        {
            var available = Months.Sum(m => m.GpuHoursAvailable);
            return available > 0 ? Months.Sum(m => m.GpuHoursUsed) / available : null;
        }
    }

    /// <summary>Accrued cost per million output tokens served over the horizon; null when it served none.</summary>
    public decimal? CostPerMillion => TotalOutputTokens > 0 ? TotalCost / (decimal)TotalOutputTokens : null;
}

/// <summary>A shadow price: what one more unit of something is worth to the plan, in USD of net present cost saved.</summary>
/// <param name="Value">Positive: the plan's net present cost falls by this much per unit.</param>
public sealed record ShadowPrice(string Name, decimal Value, string Unit, string Meaning);

/// <summary>
/// The optimiser's answer: the portfolio, its dispatch by month, its net present cost and shadow prices.
/// <see cref="NetPresentCost"/> is the cost of the integer plan (whole nodes, deals taken or not); <see cref="LowerBound"/>
/// the LP relaxation's (nothing can cost less); <see cref="BestBound"/> the mixed-integer solver's proven bound on the
/// best integer plan (at least the LP bound).
/// </summary>
public sealed record Portfolio(
    IReadOnlyList<OptionPlan> Options,
    decimal NetPresentCost,
    decimal LowerBound,
    decimal BestBound,
    IReadOnlyList<ShadowPrice> ShadowPrices,
    IReadOnlyList<decimal> PeakMarginalCostPerMillion,
    TimeSpan SolveTime,
    int Variables,
    int Constraints)
{
    /// <summary>
    /// (cost − LP bound) / LP bound: the plan costs at most this share more than any plan could, whole nodes or not;
    /// so cost ≤ LP bound × (1 + gap). Null when the bound is not positive (no cost to measure against).
    /// </summary>
    public double? LpGap => LowerBound > 0 ? (double)((NetPresentCost - LowerBound) / LowerBound) : null;

    /// <summary>(cost − best bound) / best bound: how far the plan may be from the best integer plan, as the solver proved it.</summary>
    public double? OptimalityGap => BestBound > 0 ? (double)(Math.Max(0, NetPresentCost - BestBound) / BestBound) : null;
}
