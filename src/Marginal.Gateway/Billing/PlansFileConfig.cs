namespace Marginal.Gateway.Billing;

// What the user wrote in the plans file (billing.plans). Mutable only so YamlDotNet can fill them; PlansLoader
// validates them into a BillingModel and nothing changes them afterwards.

/// <summary>The plans file: plans by name, tenants and keys with their plan, budgets and limits.</summary>
public sealed class PlansFileConfig
{
    public Dictionary<string, PlanConfig> Plans { get; set; } = [];

    /// <summary>The plan of a tenant the file does not list; none: such tenants pay cost with no markup.</summary>
    public string? DefaultPlan { get; set; }

    public Dictionary<string, TenantConfig> Tenants { get; set; } = [];

    /// <summary>Budgets and limits per virtual key, by the key's public id.</summary>
    public Dictionary<string, TenantConfig> Keys { get; set; } = [];
}

public sealed class PlanConfig
{
    public Dictionary<string, TokenPriceConfig> Prices { get; set; } = [];
    public decimal? Markup { get; set; }
    public TiersConfig? Tiers { get; set; }
    public PackageConfig? Package { get; set; }
    public FreeConfig? Free { get; set; }
    public bool Prepaid { get; set; }
    public decimal? CommitmentUsd { get; set; }
    public decimal? Discount { get; set; }
    public Dictionary<string, decimal> Outcomes { get; set; } = [];
    public Dictionary<string, decimal> Surcharges { get; set; } = [];
}

public sealed class TokenPriceConfig
{
    public decimal? Input { get; set; }
    public decimal? CachedInput { get; set; }
    public decimal? Output { get; set; }
}

public sealed class TiersConfig
{
    /// <summary><c>graduated</c> or <c>volume</c>.</summary>
    public string? Mode { get; set; }

    /// <summary><c>tokens</c> or <c>usd</c>.</summary>
    public string? By { get; set; }

    public List<TierBandConfig> Bands { get; set; } = [];
}

public sealed class TierBandConfig
{
    public decimal? UpTo { get; set; }
    public decimal? Discount { get; set; }
}

public sealed class PackageConfig
{
    public long? Tokens { get; set; }
    public decimal? Usd { get; set; }
}

public sealed class FreeConfig
{
    public long? Tokens { get; set; }
    public decimal? Usd { get; set; }

    /// <summary><c>refuse</c> (402), <c>downgrade</c> (to <see cref="Model"/>) or <c>bill</c>.</summary>
    public string? After { get; set; }

    public string? Model { get; set; }
}

/// <summary>A tenant's (or a key's) plan, budgets and limits.</summary>
public sealed class TenantConfig
{
    /// <summary>Keys only inherit their tenant's plan; a plan here is for tenants.</summary>
    public string? Plan { get; set; }
    public BudgetConfig? Budget { get; set; }
    public LimitsConfig? Limits { get; set; }
}

/// <summary>USD of cost (fully loaded) a tenant or key may spend per UTC day and per UTC month.</summary>
public sealed class BudgetConfig
{
    public decimal? DailyUsd { get; set; }
    public decimal? MonthlyUsd { get; set; }
}

/// <summary>Requests per minute and tokens (prompt + max output) per minute.</summary>
public sealed class LimitsConfig
{
    public long? Rpm { get; set; }
    public long? Tpm { get; set; }
}
