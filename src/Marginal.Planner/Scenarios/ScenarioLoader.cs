using System.Globalization;
using System.Reflection;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

using Marginal.Planner.Hardware;

namespace Marginal.Planner.Scenarios;

/// <summary>
/// Reads a scenario file into a validated <see cref="Scenario"/>. Every problem found is reported, one line each,
/// in a <see cref="ScenarioException"/>: <c>file: path.in.file: what is wrong (allowed: …)</c>. A YAML syntax error or
/// an unknown key stops reading at once (the rest of the file cannot be trusted), so it is the only line then.
/// </summary>
public static class ScenarioLoader
{
    public static readonly string[] Kinds = ["own", "reserved", "on_demand", "spot", "api", "joint_venture"];
    public static readonly string[] Resolutions = ["day_profile", "hourly"];
    public static readonly string[] Precisions = ["bf16", "fp16", "fp8", "fp4", "int4"];
    public static readonly string[] QualityTiers = ["frontier", "standard", "economy"];
    public static readonly string[] FundingKinds = ["equity", "debt"];

    private static readonly IDeserializer Yaml = new DeserializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .Build();

    // How a YAML error inside each type is described: "unknown key 'x' in a supply option (allowed: …)".
    private static readonly Dictionary<Type, string> Places = new()
    {
        [typeof(ScenarioConfig)] = "the top level", [typeof(WorkloadConfig)] = "a workload", [typeof(SurgeConfig)] = "a surge",
        [typeof(ModelConfig)] = "a model", [typeof(AcceleratorConfig)] = "an accelerator", [typeof(SupplyOptionConfig)] = "a supply option",
        [typeof(LeversConfig)] = "'levers'", [typeof(PricingConfig)] = "'pricing'", [typeof(PlanConfig)] = "a pricing plan",
        [typeof(FinanceConfig)] = "'finance'", [typeof(FundingConfig)] = "a funding event", [typeof(PerformanceConfig)] = "'performance'",
    };

    public static Scenario Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ScenarioException($"{path}: cannot read the file ({ex.Message})", ex);
        }
        return Parse(text, path);
    }

    public static Scenario Parse(string yaml, string fileName) => Validate(Read<ScenarioConfig>(yaml, fileName), fileName, KeysPresent(yaml));

    /// <summary>
    /// Checks a scenario built in code (e.g. a file whose demand was replaced by what the ledger observed) as a file is
    /// checked; problems name <paramref name="fileName"/>. <paramref name="present"/>: the key paths the file wrote
    /// (<c>supply.od.price_per_gpu_hour</c>), so a required number left out reads "missing" rather than the 0 it
    /// deserialised to; null for a scenario built in code, whose every field is set.
    /// </summary>
    internal static Scenario Validate(ScenarioConfig config, string fileName, IReadOnlySet<string>? present = null)
    {
        var accelerators = new Dictionary<string, AcceleratorConfig>(AcceleratorCatalogue.Shipped);
        var problems = new List<string>();
        void Problem(string path, string what) => problems.Add($"{fileName}: {path}: {what}");
        _present = present;
        foreach (var (name, accelerator) in config.Accelerators)
        {
            if (accelerator is null)
            {
                Problem($"accelerators.{name}", "is empty");
                continue;
            }
            AcceleratorCatalogue.Validate(accelerator, $"accelerators.{name}", Problem);
            accelerators[name] = accelerator;
        }
        var start = ValidateTop(config, Problem);
        ValidateModels(config, Problem);
        ValidateWorkloads(config, Problem);
        ValidateSupply(config, accelerators, Problem);
        ValidateLeversPricingFinance(config, Problem);
        _present = null;
        if (problems.Count > 0)
        {
            throw new ScenarioException(problems);
        }
        return new Scenario(fileName, config, accelerators, start);
    }

    // The key paths of the file being validated (see Validate); per thread, as validation runs on the caller's thread.
    [ThreadStatic]
    private static IReadOnlySet<string>? _present;

    /// <summary>Every key path a YAML text writes: <c>a.b.c</c> for mappings, <c>a.b[0].c</c> inside sequences.</summary>
    private static HashSet<string> KeysPresent(string yaml)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        void Walk(YamlNode node, string at)
        {
            switch (node)
            {
                case YamlMappingNode mapping:
                    foreach (var (key, value) in mapping.Children)
                    {
                        var path = at.Length == 0 ? ((YamlScalarNode)key).Value! : $"{at}.{((YamlScalarNode)key).Value}";
                        keys.Add(path);
                        Walk(value, path);
                    }
                    break;
                case YamlSequenceNode sequence:
                    for (var i = 0; i < sequence.Children.Count; i++)
                    {
                        Walk(sequence.Children[i], $"{at}[{i}]");
                    }
                    break;
            }
        }
        foreach (var document in stream.Documents)
        {
            Walk(document.RootNode, "");
        }
        return keys;
    }

    /// <summary>False, with a "missing" problem naming what is allowed, when the file did not write <paramref name="at"/>.</summary>
    private static bool Required(string at, string allowed, Action<string, string> problem)
    {
        if (_present is null || _present.Contains(at))
        {
            return true;
        }
        problem(at, $"missing (allowed: {allowed})");
        return false;
    }

    /// <summary>Deserialises YAML; syntax errors and unknown keys become one <see cref="ScenarioException"/> line.</summary>
    internal static T Read<T>(string yaml, string fileName)
        where T : class, new()
    {
        try
        {
            return Yaml.Deserialize<T?>(yaml) ?? new T();
        }
        catch (YamlException ex)
        {
            throw new ScenarioException($"{fileName}:{ex.Start.Line}:{ex.Start.Column}: {Explain(ex)}", ex);
        }
    }

    private static string Explain(YamlException ex)
    {
        // YamlDotNet: "Property 'x' not found on type 'Marginal.Planner.Scenarios.ModelConfig'."
        const string Prefix = "Property '";
        if (!ex.Message.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return $"invalid value: {(ex.InnerException ?? ex).Message.TrimEnd('.')}";
        }
        var key = ex.Message[Prefix.Length..ex.Message.IndexOf('\'', Prefix.Length)];
        var place = Places.FirstOrDefault(p => ex.Message.EndsWith($"'{p.Key.FullName}'.", StringComparison.Ordinal));
        if (place.Key is null)
        {
            return $"unknown key '{key}'";
        }
        var allowed = place.Key.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => UnderscoredNamingConvention.Instance.Apply(p.Name));
        return $"unknown key '{key}' in {place.Value} (allowed: {string.Join(", ", allowed)})";
    }

    private static DateOnly ValidateTop(ScenarioConfig config, Action<string, string> problem)
    {
        if (!DateOnly.TryParseExact(config.Start + "-01", "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var start))
        {
            problem("start", $"'{config.Start}' is not a month (allowed: YYYY-MM, e.g. 2027-01)");
        }
        if (config.HorizonMonths is < 1 or > 120)
        {
            problem("horizon_months", $"{config.HorizonMonths} is out of range (allowed: 1 to 120)");
        }
        Among(config.Resolution, Resolutions, "resolution", problem);
        if (config.Workloads.Count == 0)
        {
            problem("workloads", "none defined; at least one is needed");
        }
        if (config.Supply.Count == 0)
        {
            problem("supply", "none defined; at least one supply option is needed");
        }
        foreach (var (supplier, cap) in config.SupplierCaps)
        {
            Fraction(cap, $"supplier_caps.{supplier}", problem, allowZero: false);
        }
        var p = config.Performance;
        Fraction(p.ComputeEfficiency, "performance.compute_efficiency", problem, allowZero: false);
        Fraction(p.BandwidthEfficiency, "performance.bandwidth_efficiency", problem, allowZero: false);
        Fraction(p.MemoryUtilisation, "performance.memory_utilisation", problem, allowZero: false);
        if (p.MaxBatch is < 1 or > 65536)
        {
            problem("performance.max_batch", $"{p.MaxBatch} is out of range (allowed: 1 to 65536)");
        }
        if (!(p.AllReduceCost >= 0 && p.AllReduceCost <= 10))
        {
            problem("performance.all_reduce_cost", $"{p.AllReduceCost.ToString(CultureInfo.InvariantCulture)} is out of range (allowed: 0 to 10)");
        }
        return start;
    }

    private static void ValidateModels(ScenarioConfig config, Action<string, string> problem)
    {
        foreach (var (name, model) in config.Models)
        {
            var at = $"models.{name}";
            if (model is null)
            {
                problem(at, "is empty; needs at least parameters_b and kv_bytes_per_token");
                continue;
            }
            if (Required($"{at}.parameters_b", "billions of parameters, above 0", problem))
            {
                Positive(model.ParametersB, $"{at}.parameters_b", "billions of parameters", problem);
            }
            if (model.ActiveParametersB is { } active && (active <= 0 || active > model.ParametersB))
            {
                problem($"{at}.active_parameters_b", $"{active} is out of range (allowed: above 0, at most parameters_b = {model.ParametersB})");
            }
            Among(model.Precision, Precisions, $"{at}.precision", problem);
            if (model.Experts != 0 || model.ActiveExperts != 0)
            {
                if (model.Experts < 2 || model.Experts > 4096)
                {
                    problem($"{at}.experts", $"{model.Experts} is out of range (allowed: routed experts per MoE layer, 2 to 4096; 0 or left out for a dense model)");
                }
                else if (model.ActiveExperts < 1 || model.ActiveExperts >= model.Experts)
                {
                    problem($"{at}.active_experts", $"{model.ActiveExperts} is out of range (allowed: experts each token uses, 1 to experts − 1 = {model.Experts - 1})");
                }
            }
            if (Required($"{at}.kv_bytes_per_token", "bytes, above 0", problem))
            {
                Positive(model.KvBytesPerToken, $"{at}.kv_bytes_per_token", "bytes", problem);
            }
            Positive(model.ContextTokens, $"{at}.context_tokens", "tokens", problem);
            Among(model.QualityTier, QualityTiers, $"{at}.quality_tier", problem);
        }
    }

    private static void ValidateWorkloads(ScenarioConfig config, Action<string, string> problem)
    {
        foreach (var (name, workload) in config.Workloads)
        {
            var at = $"workloads.{name}";
            if (workload is null)
            {
                problem(at, "is empty; needs model, input_tokens_per_month and output_tokens_per_month");
                continue;
            }
            ModelName(config, workload.Model, $"{at}.model", problem);
            if (workload.InputTokensPerMonth < 0)
            {
                problem($"{at}.input_tokens_per_month", $"{workload.InputTokensPerMonth} is negative (allowed: tokens, 0 or more)");
            }
            if (Required($"{at}.output_tokens_per_month", "tokens, above 0", problem) && workload.OutputTokensPerMonth <= 0)
            {
                problem($"{at}.output_tokens_per_month", $"{workload.OutputTokensPerMonth} is not allowed (allowed: tokens, above 0)");
            }
            if (workload.GrowthPerMonth is <= -1 or > 10)
            {
                problem($"{at}.growth_per_month", $"{workload.GrowthPerMonth} is out of range (allowed: above -1 to 10, e.g. 0.08 for 8%)");
            }
            if (workload.DailyProfile.Count is not (0 or 24) || workload.DailyProfile.Any(w => w < 0) || (workload.DailyProfile.Count == 24 && workload.DailyProfile.Sum() <= 0))
            {
                problem($"{at}.daily_profile", $"has {workload.DailyProfile.Count} weights (allowed: 24 weights, 0 or more, not all 0, hour 0 to 23; or none for flat)");
            }
            Positive(workload.LatencySloMsPerToken, $"{at}.latency_slo_ms_per_token", "milliseconds", problem);
            if (workload.TtftSloMs is { } ttft)
            {
                Positive(ttft, $"{at}.ttft_slo_ms", "milliseconds", problem);
            }
            Fraction(workload.BatchShare, $"{at}.batch_share", problem, allowZero: true);
            for (var i = 0; i < workload.Surges.Count; i++)
            {
                var s = workload.Surges[i];
                var sAt = $"{at}.surges[{i}]";
                if (s.Month < 1 || s.Month > config.HorizonMonths)
                {
                    problem($"{sAt}.month", $"{s.Month} is outside the plan (allowed: 1 to horizon_months = {config.HorizonMonths})");
                }
                if (s.Day is < 1 or > 28)
                {
                    problem($"{sAt}.day", $"{s.Day} is out of range (allowed: 1 to 28)");
                }
                if (s.Hour is < 0 or > 23 || s.Hours < 1 || s.Hour + s.Hours > 24)
                {
                    problem($"{sAt}.hours", $"hour {s.Hour} for {s.Hours} hours does not fit in one day (allowed: hour 0 to 23, hours 1 or more, ending by hour 24)");
                }
                if (s.Multiplier is < 1 or > 100)
                {
                    problem($"{sAt}.multiplier", $"{s.Multiplier} is out of range (allowed: 1 to 100)");
                }
            }
        }
    }

    private static void ValidateSupply(ScenarioConfig config, Dictionary<string, AcceleratorConfig> accelerators, Action<string, string> problem)
    {
        foreach (var (name, option) in config.Supply)
        {
            var at = $"supply.{name}";
            if (option is null)
            {
                problem(at, $"is empty; needs at least kind ({string.Join(", ", Kinds)})");
                continue;
            }
            if (!Among(option.Kind, Kinds, $"{at}.kind", problem))
            {
                continue;
            }
            if (string.IsNullOrWhiteSpace(option.Source) || !IsDate(option.AsOf))
            {
                problem($"{at}.source", "every supply option needs source (where its prices come from, or 'assumption: why') and as_of (YYYY, YYYY-MM or YYYY-MM-DD)");
            }
            if (option.LeadTimeMonths < 0 || option.LeadTimeMonths >= config.HorizonMonths)
            {
                problem($"{at}.lead_time_months", $"{option.LeadTimeMonths} is out of range (allowed: 0 to horizon_months - 1 = {config.HorizonMonths - 1})");
            }
            AtLeast(option.MinGpus, $"{at}.min_gpus", 0.0, "GPUs", problem);
            if (option.MaxGpus is { } max && (max < 0 || max < option.MinGpus))
            {
                problem($"{at}.max_gpus", $"{max} is out of range (allowed: GPUs, 0 or more and at least min_gpus = {option.MinGpus})");
            }
            if (option.Kind == "api")
            {
                AtLeast(option.InputPerM, $"{at}.input_per_m", 0, "USD per million tokens", problem);
                if (option.CachedInputPerM is { } cached)
                {
                    AtLeast(cached, $"{at}.cached_input_per_m", 0, "USD per million tokens", problem);
                }
                if (Required($"{at}.output_per_m", "USD per million tokens, above 0", problem))
                {
                    Above(option.OutputPerM, $"{at}.output_per_m", 0, "USD per million tokens", problem);
                }
                if (option.BatchMultiplier is <= 0 or > 1)
                {
                    problem($"{at}.batch_multiplier", $"{option.BatchMultiplier} is out of range (allowed: above 0 to 1)");
                }
                if (option.MaxTokensPerMinute is <= 0)
                {
                    problem($"{at}.max_tokens_per_minute", $"{option.MaxTokensPerMinute} is not allowed (allowed: tokens per minute, above 0; leave it out for no limit)");
                }
                foreach (var model in option.Models)
                {
                    ModelName(config, model, $"{at}.models", problem);
                }
                continue;
            }
            if (option.Accelerator is null)
            {
                problem($"{at}.accelerator", $"missing (allowed: {string.Join(", ", accelerators.Keys)})");
                continue;
            }
            if (!accelerators.TryGetValue(option.Accelerator, out var accelerator))
            {
                problem($"{at}.accelerator", $"'{option.Accelerator}' is not in the catalogue (allowed: {string.Join(", ", accelerators.Keys)})");
                continue;
            }
            switch (option.Kind)
            {
                case "reserved" or "on_demand" or "spot":
                    if (Required($"{at}.price_per_gpu_hour", "USD per GPU-hour, above 0", problem) && option.PricePerGpuHour <= 0)
                    {
                        problem($"{at}.price_per_gpu_hour", $"{option.PricePerGpuHour} is not allowed (allowed: USD per GPU-hour, above 0)");
                    }
                    if (option.Kind == "reserved")
                    {
                        Fraction(option.TakeOrPay, $"{at}.take_or_pay", problem, allowZero: true);
                        if (option.TermMonths < 1)
                        {
                            problem($"{at}.term_months", $"{option.TermMonths} is not allowed (allowed: 1 or more)");
                        }
                        if (option.GpusPerNode < 1)
                        {
                            problem($"{at}.gpus_per_node", $"{option.GpusPerNode} is not allowed (allowed: 1 or more)");
                        }
                    }
                    if (option.Kind == "spot" && option.PreemptionRate is < 0 or >= 1)
                    {
                        problem($"{at}.preemption_rate", $"{option.PreemptionRate} is out of range (allowed: 0 to below 1)");
                    }
                    break;
                case "own":
                    if (option.CapexPerGpu is null && accelerator.PurchasePrice is null)
                    {
                        problem($"{at}.capex_per_gpu", $"'{option.Accelerator}' has no purchase price in the catalogue (it is rented only); set capex_per_gpu or choose another accelerator");
                    }
                    if (option.CapexPerGpu is { } capex)
                    {
                        Above(capex, $"{at}.capex_per_gpu", 0, "USD per GPU", problem);
                    }
                    if (option.GpusPerNode < 1)
                    {
                        problem($"{at}.gpus_per_node", $"{option.GpusPerNode} is not allowed (allowed: 1 or more)");
                    }
                    AtLeast(option.ServerOverhead, $"{at}.server_overhead", 0, "a share of the accelerator's price", problem);
                    AtLeast(option.ColocationPerKwMonth, $"{at}.colocation_per_kw_month", 0, "USD per kW-month", problem);
                    AtLeast(option.PowerPricePerKwh, $"{at}.power_price_per_kwh", 0, "USD per kWh", problem);
                    AtLeast(option.Pue, $"{at}.pue", 1, "power usage effectiveness", problem);
                    AtLeast(option.OpsPerGpuMonth, $"{at}.ops_per_gpu_month", 0, "USD per GPU-month", problem);
                    Depreciation(option, at, problem);
                    if (accelerator.PowerKw is null && (option.ColocationPerKwMonth > 0 || option.PowerPricePerKwh > 0))
                    {
                        problem($"{at}.accelerator", $"'{option.Accelerator}' has no published power figure; add power_kw to the accelerator to price colocation and power");
                    }
                    break;
                case "joint_venture":
                    if (Required($"{at}.facility_gpus", "GPUs, 1 or more", problem) && option.FacilityGpus < 1)
                    {
                        problem($"{at}.facility_gpus", $"{option.FacilityGpus} is not allowed (allowed: GPUs, 1 or more)");
                    }
                    if (Required($"{at}.share", "above 0 to 1", problem) && option.Share is <= 0 or > 1 or double.NaN)
                    {
                        problem($"{at}.share", $"{Text(option.Share)} is out of range (allowed: above 0 to 1)");
                    }
                    if (Required($"{at}.facility_capex", "USD, 0 or more", problem))
                    {
                        AtLeast(option.FacilityCapex, $"{at}.facility_capex", 0, "USD", problem);
                    }
                    AtLeast(option.FacilityOpexPerMonth, $"{at}.facility_opex_per_month", 0, "USD per month", problem);
                    AtLeast(option.Guarantee, $"{at}.guarantee", 0, "USD", problem);
                    Depreciation(option, at, problem);
                    break;
            }
        }
    }

    /// <summary>
    /// A depreciation life of at least one month (straight-line depreciation per month needs one; shorter is refused, not
    /// raised to a month) and at most 30 years; a residual value below the purchase price (at 1 or above, depreciation
    /// would be zero or negative).
    /// </summary>
    private static void Depreciation(SupplyOptionConfig option, string at, Action<string, string> problem)
    {
        if (option.LifetimeYears is { } years && !(years >= 1.0 / 12 && years <= 30))
        {
            problem($"{at}.lifetime_years", $"{Text(years)} is out of range (allowed: years, 0.0833 (one month) to 30)");
        }
        if (option.ResidualFraction is { } residual && !(residual >= 0 && residual < 1))
        {
            problem($"{at}.residual_fraction", $"{Text(residual)} is out of range (allowed: a share of the purchase price, 0 to below 1)");
        }
    }

    private static void ValidateLeversPricingFinance(ScenarioConfig config, Action<string, string> problem)
    {
        var levers = config.Levers;
        Fraction(levers.CacheHitRate, "levers.cache_hit_rate", problem, allowZero: true);
        Fraction(levers.SmallModelShare, "levers.small_model_share", problem, allowZero: true);
        if (levers.SmallModelShare > 0)
        {
            ModelName(config, levers.SmallModel, "levers.small_model", problem);
        }
        if (levers.BatchingEfficiency is <= 0 or > 2)
        {
            problem("levers.batching_efficiency", $"{levers.BatchingEfficiency} is out of range (allowed: above 0 to 2)");
        }
        if (levers.Quantization is not null)
        {
            Among(levers.Quantization, Precisions, "levers.quantization", problem);
        }
        var pricing = config.Pricing;
        for (var i = 0; i < pricing.Plans.Count; i++)
        {
            var plan = pricing.Plans[i];
            Fraction(plan.Share, $"pricing.plans[{i}].share", problem, allowZero: true);
            AtLeast(plan.InputPerM, $"pricing.plans[{i}].input_per_m", 0, "USD per million tokens", problem);
            AtLeast(plan.OutputPerM, $"pricing.plans[{i}].output_per_m", 0, "USD per million tokens", problem);
        }
        // The sum is checked only when every share is in range, so one bad share is one line.
        if (pricing.Plans.Count > 0 && pricing.Plans.All(p => p.Share is >= 0 and <= 1) && Math.Abs(pricing.Plans.Sum(p => p.Share) - 1) > 1e-6)
        {
            problem("pricing.plans", $"shares add up to {pricing.Plans.Sum(p => p.Share):0.###} (allowed: they add up to 1)");
        }
        Above(pricing.PriceChange, "pricing.price_change", -1, "a change of price, e.g. -0.2 for a 20% cut", problem);
        if (!(pricing.Elasticity <= 0))
        {
            problem("pricing.elasticity", $"{Text(pricing.Elasticity)} is out of range (allowed: 0 or below, e.g. -1.2)");
        }
        AtLeast(pricing.ChurnPerPriceIncrease, "pricing.churn_per_price_increase", 0, "churn per unit of price increase", problem);
        var finance = config.Finance;
        if (finance.DiscountRate is < 0 or > 1)
        {
            problem("finance.discount_rate", $"{finance.DiscountRate} is out of range (allowed: 0 to 1 a year, e.g. 0.12)");
        }
        if (finance.CapexBudget is { } budget)
        {
            AtLeast(budget, "finance.capex_budget", 0, "USD", problem);
        }
        AtLeast(finance.StartingCash, "finance.starting_cash", 0, "USD", problem);
        AtLeast(finance.OpexPerMonth, "finance.opex_per_month", 0, "USD per month", problem);
        AtLeast(finance.RndPerMonth, "finance.rnd_per_month", 0, "USD per month", problem);
        for (var i = 0; i < finance.Funding.Count; i++)
        {
            var funding = finance.Funding[i];
            if (funding.Month < 1 || funding.Month > config.HorizonMonths)
            {
                problem($"finance.funding[{i}].month", $"{funding.Month} is outside the plan (allowed: 1 to {config.HorizonMonths})");
            }
            Among(funding.Kind, FundingKinds, $"finance.funding[{i}].kind", problem);
            Above(funding.Amount, $"finance.funding[{i}].amount", 0, "USD", problem);
        }
    }

    private static void ModelName(ScenarioConfig config, string? model, string at, Action<string, string> problem)
    {
        var defined = config.Models.Count == 0 ? "none" : string.Join(", ", config.Models.Keys);
        if (model is null)
        {
            problem(at, $"missing (allowed: a model defined under models: {defined})");
        }
        else if (!config.Models.ContainsKey(model))
        {
            problem(at, $"'{model}' is not defined under models (defined: {defined})");
        }
    }

    private static bool Among(string? value, string[] allowed, string at, Action<string, string> problem)
    {
        if (value is not null && allowed.Contains(value))
        {
            return true;
        }
        problem(at, value is null ? $"missing (allowed: {string.Join(", ", allowed)})" : $"'{value}' is not allowed (allowed: {string.Join(", ", allowed)})");
        return false;
    }

    private static string Text(double value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A number that must be at least <paramref name="low"/> (NaN never is).</summary>
    private static void AtLeast(double value, string at, double low, string unit, Action<string, string> problem)
    {
        if (!(value >= low) || double.IsInfinity(value))
        {
            problem(at, $"{Text(value)} is out of range (allowed: {unit}, {Text(low)} or more)");
        }
    }

    private static void AtLeast(decimal value, string at, decimal low, string unit, Action<string, string> problem)
    {
        if (value < low)
        {
            problem(at, $"{value.ToString(CultureInfo.InvariantCulture)} is out of range (allowed: {unit}, {low.ToString(CultureInfo.InvariantCulture)} or more)");
        }
    }

    private static void Above(double value, string at, double low, string unit, Action<string, string> problem)
    {
        if (!(value > low) || double.IsInfinity(value))
        {
            problem(at, $"{Text(value)} is out of range (allowed: {unit}, above {Text(low)})");
        }
    }

    private static void Above(decimal value, string at, decimal low, string unit, Action<string, string> problem)
    {
        if (value <= low)
        {
            problem(at, $"{value.ToString(CultureInfo.InvariantCulture)} is out of range (allowed: {unit}, above {low.ToString(CultureInfo.InvariantCulture)})");
        }
    }

    internal static void Positive(double value, string at, string unit, Action<string, string> problem)
    {
        if (!(value > 0) || double.IsInfinity(value))
        {
            problem(at, $"{value.ToString(CultureInfo.InvariantCulture)} is not allowed (allowed: {unit}, above 0)");
        }
    }

    internal static void Fraction(double value, string at, Action<string, string> problem, bool allowZero)
    {
        if (double.IsNaN(value) || value > 1 || value < 0 || (!allowZero && value == 0))
        {
            problem(at, $"{value.ToString(CultureInfo.InvariantCulture)} is out of range (allowed: {(allowZero ? "0" : "above 0")} to 1)");
        }
    }

    internal static bool IsDate(string? text) =>
        text is not null && (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _)
            || DateOnly.TryParseExact(text + "-01", "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _)
            || DateOnly.TryParseExact(text + "-01-01", "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _));
}
