using Marginal.Core.Ledger;

namespace Marginal.Economics.UnitEconomics;

/// <summary>What an economics report's breakdown groups by.</summary>
public enum EconomicsGrouping
{
    Tenant,
    /// <summary>The served model.</summary>
    Model,
    Provider,
    /// <summary><c>owned</c>, <c>rented</c> or <c>api</c>.</summary>
    Capacity,
    /// <summary>The model or route alias the client asked for.</summary>
    Route,
}

/// <summary>
/// An owned pool as the report needs it: the local provider's name and its costs per hour (docs/economics.md, "Owned
/// capacity"). <see cref="IdleEnergyPerHourUsd"/> is what it draws idle (<c>idle_power_kw</c> × PUE × USD/kWh), null when
/// idle power is not modelled. <see cref="Started"/> is when the pool started (its first record in the ledger): its
/// utilisation and stranded-cost windows begin there, never before.
/// </summary>
public sealed record OwnedPool(string Provider, decimal CostPerHourUsd, decimal EnergyPerHourUsd, decimal? IdleEnergyPerHourUsd = null, DateTimeOffset? Started = null)
{
    /// <summary>What an idle hour costs: the pool's cost per hour less the decoding energy, plus idle energy when modelled.</summary>
    public decimal IdleCostPerHourUsd => CostPerHourUsd - EnergyPerHourUsd + (IdleEnergyPerHourUsd ?? 0m);

    /// <summary>How stranded cost treats energy, as the report states it.</summary>
    public string StrandedBasis => IdleEnergyPerHourUsd is null
        ? "energy left out: idle power not modelled (set idle_power_kw)"
        : "idle energy included (idle_power_kw)";
}

/// <summary>
/// The price a spill-over model charges, USD per 1M tokens: where tokens go once the owned pools are full.
/// <see cref="Basis"/> is null for a configured fallback (fallbacks are tried in order, so the first takes the spill);
/// otherwise it names the stand-in used when no priced fallback is configured (e.g. "cheapest standard-tier API model
/// in the price book"), and the cheapest such candidate at the window's input/output mix takes the spill.
/// </summary>
public sealed record SpilloverPrice(string Model, decimal InputUsdPerMillion, decimal OutputUsdPerMillion, string Source, string? Basis = null);

/// <summary>
/// One group's figures. Null money means "not known", never zero: <see cref="CostUsd"/> is null when no request in the
/// group was priced ("unpriced"), <see cref="RevenueUsd"/> null when no record carries revenue ("no plan"); the
/// counts of requests without a price or plan say how partial a non-null figure is.
/// </summary>
public sealed record EconomicsRow(
    string Group,
    long Requests,
    long Errors,
    long InputTokens,
    long OutputTokens,
    decimal? CostUsd,
    decimal? MarginalCostUsd,
    decimal? RevenueUsd,
    long UnpricedRequests,
    long UnplannedRequests,
    decimal? CostPerMillionTokensUsd,
    decimal? GrossMargin,
    decimal? CostShareOfRevenue,
    decimal FixedCostUsd,
    decimal VariableCostUsd,
    decimal? CacheHitRate)
{
    public decimal? GrossProfitUsd => RevenueUsd is { } revenue ? revenue - (CostUsd ?? 0m) : null;
}

/// <summary>One lever's savings in the window and what it is measured against.</summary>
public sealed record LeverSaving(string Lever, decimal SavingsUsd, string Counterfactual);

/// <summary>
/// An owned pool over the window, which starts when the pool started (<see cref="OwnedPool.Started"/>) if that is later
/// than the report's start: busy hours = loaded cost of its requests ÷ its cost per hour; utilisation = busy ÷ window
/// hours; stranded cost = (window − busy) hours × idle cost per hour (<see cref="OwnedPool.IdleCostPerHourUsd"/>), what
/// the idle capacity cost; <see cref="StrandedBasis"/> says whether it includes energy.
/// </summary>
public sealed record PoolUtilisation(string Provider, decimal WindowHours, decimal BusyHours, decimal Utilisation, decimal PoolCostUsd, decimal LoadedCostUsd,
    decimal StrandedCostUsd, long Tokens, decimal? TokensPerBusyHour, decimal? RecentUtilisation, string StrandedBasis = "");

/// <summary>A stretch of the marginal cost curve: tokens [From, To) of the next ones cost <see cref="UsdPerMillion"/>; null when unpriced.</summary>
public sealed record MarginalSegment(long FromTokens, long ToTokens, string Source, decimal? UsdPerMillion);

/// <summary>One hour of the time series; null money as in <see cref="EconomicsRow"/>.</summary>
public sealed record EconomicsPoint(DateTimeOffset Hour, long Requests, long Tokens, decimal? CostUsd, decimal? RevenueUsd, decimal? MarginUsd,
    decimal? CacheHitRate, decimal? OwnedUtilisation);

/// <summary>The whole picture for one window; see <see cref="EconomicsQueries.Build"/>.</summary>
public sealed record EconomicsReport(
    DateTimeOffset Since,
    DateTimeOffset Until,
    EconomicsGrouping By,
    EconomicsRow Total,
    IReadOnlyList<EconomicsRow> Rows,
    IReadOnlyList<EconomicsPoint> Series,
    IReadOnlyList<LeverSaving> Savings,
    IReadOnlyList<PoolUtilisation> Pools,
    decimal? FixedShare,
    IReadOnlyList<KeyValuePair<string, decimal>> SpendByProvider,
    decimal? SupplierHhi,
    IReadOnlyList<KeyValuePair<string, long>> RoutingMix,
    IReadOnlyList<MarginalSegment> MarginalCurve,
    decimal? NextMillionTokensUsd)
{
    public decimal StrandedCostUsd => Pools.Sum(p => p.StrandedCostUsd);

    public decimal TotalSavingsUsd => Savings.Sum(s => s.SavingsUsd);
}
