namespace Marginal.Core.Pricing;

/// <summary>
/// What owned hardware costs per hour it exists, and how a request served on it is charged (docs/economics.md,
/// "Owned capacity"). Every figure is the operator's: there are no defaults, an absent figure counts as zero
/// (PUE as 1, no facility overhead).
/// <code>
/// capex/h  = purchase_usd ÷ (lifetime_months × 730)          straight-line, no residual value or financing
/// energy/h = power_kw × pue × usd_per_kwh                    draw while decoding, facility overhead included
/// fixed/h  = (colocation_usd_per_month + operations_usd_per_month) ÷ 730
/// pool/h   = capex/h + energy/h + fixed/h
/// </code>
/// 730 hours a month = 8,760 hours a year ÷ 12.
/// </summary>
public sealed record OwnedPoolCost(
    decimal PurchaseUsd,
    int LifetimeMonths,
    decimal PowerKw,
    decimal UsdPerKwh,
    decimal Pue,
    decimal ColocationUsdPerMonth,
    decimal OperationsUsdPerMonth)
{
    public const decimal HoursPerMonth = 730m;

    public decimal CapexPerHour => LifetimeMonths > 0 ? PurchaseUsd / (LifetimeMonths * HoursPerMonth) : 0m;

    public decimal EnergyPerHour => PowerKw * Pue * UsdPerKwh;

    public decimal FixedPerHour => (ColocationUsdPerMonth + OperationsUsdPerMonth) / HoursPerMonth;

    /// <summary>The pool's fully loaded cost for one hour of existence.</summary>
    public decimal CostPerHour => CapexPerHour + EnergyPerHour + FixedPerHour;

    /// <summary>
    /// One request's cost from its share of busy time (each decode step's time split equally among the sequences in
    /// it). Fully loaded: pool/h × share, so the requests of a window add up to pool/h × the pool's busy time in it.
    /// Marginal: energy/h × share while the pool had headroom (the request took a free slot, so only the extra
    /// power is spent); when it had to queue the pool was saturated, and the request displaced other work: its
    /// marginal cost is then its fully loaded cost.
    /// </summary>
    public OwnedRequestCost Charge(TimeSpan busyShare, bool queued)
    {
        var hours = (decimal)busyShare.Ticks / TimeSpan.TicksPerHour;
        var full = Round(CostPerHour * hours);
        return new OwnedRequestCost(full, queued ? full : Round(EnergyPerHour * hours), busyShare);
    }

    /// <summary>
    /// Digits kept of a request's owned cost: 10 decimal places, a ten-billionth of a dollar. A share of a pool hour is
    /// a quotient that does not terminate (purchase ÷ (months × 730) × ticks ÷ ticks per hour), and unrounded it would
    /// reach the ledger and the cost header with 28 digits. The requests of a window then add up to pool/h × busy time
    /// within 5 × 10⁻¹¹ USD each (docs/economics.md, "Owned capacity").
    /// </summary>
    public const int CostDecimals = 10;

    private static decimal Round(decimal usd) => Math.Round(usd, CostDecimals, MidpointRounding.ToEven);
}

/// <summary>One request's cost on owned capacity, both ways, and the busy time it was charged for.</summary>
public sealed record OwnedRequestCost(decimal FullyLoadedUsd, decimal MarginalUsd, TimeSpan BusyShare);
