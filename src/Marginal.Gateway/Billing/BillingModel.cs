using Marginal.Economics.Plans;

namespace Marginal.Gateway.Billing;

/// <summary>What one tenant or key may spend and how fast; a null field is no limit.</summary>
public sealed record Allowance(decimal? DailyUsd, decimal? MonthlyUsd, long? Rpm, long? Tpm)
{
    public static Allowance None { get; } = new(null, null, null, null);

    public bool IsNone => DailyUsd is null && MonthlyUsd is null && Rpm is null && Tpm is null;
}

/// <summary>
/// The runtime snapshot of the plans file: each tenant's plan and allowance, each key's allowance. Immutable;
/// thread-safe. Without a plans file every tenant pays cost (<see cref="PricingPlan.AtCost"/>) with no limits.
/// </summary>
public sealed class BillingModel(
    IReadOnlyDictionary<string, PricingPlan> plans,
    PricingPlan? defaultPlan,
    IReadOnlyDictionary<string, (PricingPlan? Plan, Allowance Allowance)> tenants,
    IReadOnlyDictionary<string, Allowance> keys)
{
    public static BillingModel None { get; } = new(new Dictionary<string, PricingPlan>(), null, new Dictionary<string, (PricingPlan?, Allowance)>(), new Dictionary<string, Allowance>());

    public IReadOnlyDictionary<string, PricingPlan> Plans { get; } = plans;

    /// <summary>True when any tenant or key has a budget or rate limit, or any plan refuses (free tier, prepaid).</summary>
    public bool Admits { get; } = keys.Count > 0 || tenants.Values.Any(t => !t.Allowance.IsNone)
        || plans.Values.Any(p => p.Prepaid || p.Free is { After: not FreeTierAfter.Bill });

    public PricingPlan PlanOf(string tenant) =>
        tenants.TryGetValue(tenant, out var t) && t.Plan is { } plan ? plan : defaultPlan ?? PricingPlan.AtCost;

    /// <summary>True when the plans file names <paramref name="tenant"/>.</summary>
    public bool Names(string tenant) => tenants.ContainsKey(tenant);

    public Allowance TenantAllowance(string tenant) => tenants.TryGetValue(tenant, out var t) ? t.Allowance : Allowance.None;

    public Allowance KeyAllowance(string keyId) => keys.TryGetValue(keyId, out var a) ? a : Allowance.None;
}
