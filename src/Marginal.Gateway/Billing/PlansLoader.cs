using Marginal.Economics.Plans;
using Marginal.Gateway.Configuration;

namespace Marginal.Gateway.Billing;

/// <summary>
/// Reads and validates the plans file (<c>billing.plans</c>). Every problem is reported, one line each, naming the file,
/// the field and what is allowed; any problem makes the whole file a <see cref="ConfigException"/>.
/// </summary>
public static class PlansLoader
{
    public static readonly string[] TierModes = ["graduated", "volume"];
    public static readonly string[] TierMeasures = ["tokens", "usd"];
    public static readonly string[] FreeAfter = ["refuse", "downgrade", "bill"];

    private static readonly (string? Name, Type Type)[] Sections =
    [
        ("a plan", typeof(PlanConfig)), ("a price", typeof(TokenPriceConfig)), ("'tiers'", typeof(TiersConfig)), ("a tier band", typeof(TierBandConfig)),
        ("'package'", typeof(PackageConfig)), ("'free'", typeof(FreeConfig)), ("a tenant or key", typeof(TenantConfig)),
        ("'budget'", typeof(BudgetConfig)), ("'limits'", typeof(LimitsConfig)), ("the top level", typeof(PlansFileConfig)),
    ];

    /// <summary>The billing model of <paramref name="config"/>: <see cref="BillingModel.None"/> without a plans file.</summary>
    public static BillingModel Load(MarginalConfig config) =>
        config.Billing.Plans is { } path ? Parse(YamlFiles.ReadAllText(path), path, config.Models.Keys) : BillingModel.None;

    /// <summary>Parses and validates plans YAML; <paramref name="models"/>, when given, are the models a free tier may downgrade to.</summary>
    public static BillingModel Parse(string yaml, string file, IEnumerable<string>? models = null)
    {
        var raw = YamlFiles.Deserialize<PlansFileConfig>(yaml, file, Sections);
        var problems = new List<string>();
        void Problem(string field, string message) => problems.Add($"{file}: {field}: {message}");
        var known = models?.ToHashSet(StringComparer.Ordinal);

        var plans = new Dictionary<string, PricingPlan>(StringComparer.Ordinal);
        foreach (var (name, plan) in raw.Plans)
        {
            if (plan is null)
            {
                Problem($"plans.{name}", "is empty; give prices, markup, package or free");
                continue;
            }
            plans[name] = ToPlan(name, plan, $"plans.{name}", Problem, known);
        }
        PricingPlan? defaultPlan = null;
        if (raw.DefaultPlan is { } d && !plans.TryGetValue(d, out defaultPlan))
        {
            Problem("default_plan", $"'{d}' is not a plan in this file (defined: {Names(plans.Keys)})");
        }
        var tenants = new Dictionary<string, (PricingPlan?, Allowance)>(StringComparer.Ordinal);
        foreach (var (name, tenant) in raw.Tenants)
        {
            PricingPlan? plan = null;
            if (tenant?.Plan is { } p && !plans.TryGetValue(p, out plan))
            {
                Problem($"tenants.{name}.plan", $"'{p}' is not a plan in this file (defined: {Names(plans.Keys)})");
            }
            tenants[name] = (plan, ToAllowance(tenant, $"tenants.{name}", Problem));
        }
        var keys = new Dictionary<string, Allowance>(StringComparer.Ordinal);
        foreach (var (id, key) in raw.Keys)
        {
            if (key?.Plan is not null)
            {
                Problem($"keys.{id}.plan", "a key bills under its tenant's plan; set the plan under tenants");
            }
            keys[id] = ToAllowance(key, $"keys.{id}", Problem);
        }
        if (problems.Count > 0)
        {
            throw new ConfigException(string.Join(Environment.NewLine, problems));
        }
        return new BillingModel(plans, defaultPlan, tenants, keys);
    }

    private static PricingPlan ToPlan(string name, PlanConfig plan, string at, Action<string, string> problem, HashSet<string>? models)
    {
        var prices = new Dictionary<string, TokenPrice>(StringComparer.Ordinal);
        foreach (var (model, price) in plan.Prices)
        {
            if (price?.Input is not { } input || price.Output is not { } output)
            {
                problem($"{at}.prices.{model}", "needs input and output (USD per 1M tokens)");
                continue;
            }
            NotNegative(problem, $"{at}.prices.{model}.input", input);
            NotNegative(problem, $"{at}.prices.{model}.output", output);
            NotNegative(problem, $"{at}.prices.{model}.cached_input", price.CachedInput);
            prices[model] = new TokenPrice(input, price.CachedInput, output);
        }
        NotNegative(problem, $"{at}.markup", plan.Markup);
        NotNegative(problem, $"{at}.commitment_usd", plan.CommitmentUsd);
        if (plan.Discount is { } discount && discount is < 0 or >= 1)
        {
            problem($"{at}.discount", $"must be a fraction in [0, 1), e.g. 0.15 for 15% off; got {discount}");
        }
        foreach (var (outcome, usd) in plan.Outcomes)
        {
            NotNegative(problem, $"{at}.outcomes.{outcome}", usd);
        }
        foreach (var (feature, usd) in plan.Surcharges)
        {
            NotNegative(problem, $"{at}.surcharges.{feature}", usd);
        }
        var tiers = plan.Tiers is { } t ? ToTiers(t, $"{at}.tiers", problem) : null;
        PackagePrice? package = null;
        if (plan.Package is { } p)
        {
            if (p.Tokens is not > 0)
            {
                problem($"{at}.package.tokens", $"must be a whole number of tokens above 0, got {p.Tokens?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nothing"}");
            }
            if (p.Usd is not >= 0)
            {
                problem($"{at}.package.usd", "must be a price in USD, 0 or more");
            }
            if (plan.Tiers is not null)
            {
                problem($"{at}.package", "cannot be combined with tiers (a package replaces per-token charges)");
            }
            package = new PackagePrice(Math.Max(1, p.Tokens ?? 1), p.Usd ?? 0);
        }
        FreeTier? free = null;
        if (plan.Free is { } f)
        {
            if ((f.Tokens is null) == (f.Usd is null))
            {
                problem($"{at}.free", "give exactly one of tokens (a monthly token allowance) or usd (a monthly list-spend allowance)");
            }
            if (f.Tokens is < 0 || f.Usd is < 0)
            {
                problem($"{at}.free", "the allowance must not be negative");
            }
            var after = f.After ?? "refuse";
            if (!FreeAfter.Contains(after))
            {
                problem($"{at}.free.after", $"'{after}' is not allowed (allowed: {string.Join(", ", FreeAfter)})");
            }
            if (after == "downgrade" && (f.Model is null || (models is not null && !models.Contains(f.Model))))
            {
                problem($"{at}.free.model", $"'{f.Model}' must name a model under models in marginal.yaml to downgrade to");
            }
            if (package is not null && f.Tokens is null)
            {
                problem($"{at}.free", "a package plan's allowance must be in tokens");
            }
            free = new FreeTier(f.Tokens, f.Tokens is null ? f.Usd ?? 0 : null, after switch { "downgrade" => FreeTierAfter.Downgrade, "bill" => FreeTierAfter.Bill, _ => FreeTierAfter.Refuse }, f.Model);
        }
        return new PricingPlan(name, prices, plan.Markup ?? 0m, tiers, package, free, plan.Prepaid, plan.CommitmentUsd ?? 0m, plan.Discount ?? 0m,
            new Dictionary<string, decimal>(plan.Outcomes, StringComparer.Ordinal), new Dictionary<string, decimal>(plan.Surcharges, StringComparer.Ordinal));
    }

    private static TierSchedule? ToTiers(TiersConfig tiers, string at, Action<string, string> problem)
    {
        if (tiers.Mode is null || !TierModes.Contains(tiers.Mode))
        {
            problem($"{at}.mode", $"'{tiers.Mode}' is not allowed (allowed: {string.Join(", ", TierModes)})");
        }
        if (tiers.By is null || !TierMeasures.Contains(tiers.By))
        {
            problem($"{at}.by", $"'{tiers.By}' is not allowed (allowed: {string.Join(", ", TierMeasures)})");
        }
        if (tiers.Bands.Count == 0)
        {
            problem($"{at}.bands", "needs at least one band ({ up_to, discount }); the last has no up_to");
            return null;
        }
        var bands = new List<TierBand>();
        decimal previous = 0;
        for (var i = 0; i < tiers.Bands.Count; i++)
        {
            var band = tiers.Bands[i] ?? new TierBandConfig();
            var field = $"{at}.bands[{i}]";
            var last = i == tiers.Bands.Count - 1;
            if (last && band.UpTo is not null)
            {
                problem($"{field}.up_to", "the last band has no up_to: it covers everything above the previous one");
            }
            if (!last && (band.UpTo is not { } upTo || upTo <= previous))
            {
                problem($"{field}.up_to", $"must be above the previous band's up_to ({previous}), got {band.UpTo?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nothing"}");
            }
            if (band.Discount is not { } discount || discount is < 0 or >= 1)
            {
                problem($"{field}.discount", $"must be a fraction in [0, 1), got {band.Discount?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nothing"}");
            }
            previous = band.UpTo ?? previous;
            bands.Add(new TierBand(last ? null : band.UpTo, band.Discount ?? 0));
        }
        return new TierSchedule(tiers.Mode == "volume" ? TierMode.Volume : TierMode.Graduated, tiers.By == "usd" ? TierMeasure.Usd : TierMeasure.Tokens, bands);
    }

    private static Allowance ToAllowance(TenantConfig? tenant, string at, Action<string, string> problem)
    {
        if (tenant is null)
        {
            return Allowance.None;
        }
        var budget = tenant.Budget;
        var limits = tenant.Limits;
        if (budget?.DailyUsd is <= 0)
        {
            problem($"{at}.budget.daily_usd", $"must be above 0, got {budget.DailyUsd}");
        }
        if (budget?.MonthlyUsd is <= 0)
        {
            problem($"{at}.budget.monthly_usd", $"must be above 0, got {budget.MonthlyUsd}");
        }
        if (limits?.Rpm is < 1)
        {
            problem($"{at}.limits.rpm", $"must be at least 1 request per minute, got {limits.Rpm}");
        }
        if (limits?.Tpm is < 1)
        {
            problem($"{at}.limits.tpm", $"must be at least 1 token per minute, got {limits.Tpm}");
        }
        return new Allowance(budget?.DailyUsd, budget?.MonthlyUsd, limits?.Rpm, limits?.Tpm);
    }

    private static void NotNegative(Action<string, string> problem, string field, decimal? value)
    {
        if (value is < 0)
        {
            problem(field, $"must not be negative, got {value}");
        }
    }

    private static string Names(IEnumerable<string> names)
    {
        var list = string.Join(", ", names);
        return list.Length == 0 ? "none" : list;
    }
}
