namespace Marginal.Planner.Optimisation;

/// <summary>
/// Changes laid over a scenario without editing it: the tornado and the finite-difference shadow prices solve the
/// same scenario with one knob moved. <see cref="None"/> plans the scenario as written.
/// </summary>
/// <param name="DemandScale">Factor on every workload's tokens (and so on the utilisation of what is bought).</param>
/// <param name="RentPriceScale">Factor on reserved, on-demand and spot GPU-hour prices and API token prices.</param>
/// <param name="CapexScale">Factor on purchase prices of owned accelerators and joint-venture capex.</param>
/// <param name="GrowthDelta">Added to every workload's monthly growth.</param>
/// <param name="LifetimeDeltaYears">Added to the depreciation life of owned accelerators.</param>
/// <param name="CacheHitDelta">Added to the cache hit rate (capped to 0..1).</param>
/// <param name="LeadTimeDeltaMonths">Added to every lead time.</param>
public sealed record PlanKnobs(
    double DemandScale = 1,
    double RentPriceScale = 1,
    double CapexScale = 1,
    double GrowthDelta = 0,
    double LifetimeDeltaYears = 0,
    double CacheHitDelta = 0,
    int LeadTimeDeltaMonths = 0)
{
    public static readonly PlanKnobs None = new();
}
