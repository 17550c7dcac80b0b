using Marginal.Planner.Performance;
using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Optimisation;

/// <summary>A stream of demand the optimiser must serve: one workload's tokens for one model, interactive or batch.</summary>
/// <param name="Batch">True: may be served any period of its day group, with no latency target, on spot and API batch tiers too.</param>
/// <param name="InputPerOutput">Input tokens per output token.</param>
public sealed record DemandClass(string Workload, string Model, bool Batch, double InputPerOutput, double? SloSecondsPerToken)
{
    /// <summary>Time to first token the class must meet, seconds; null: none (batch work, or no target set).</summary>
    public double? TtftSeconds { get; init; }

    public string Name => $"{Workload}/{Model}/{(Batch ? "batch" : "interactive")}";
}

/// <summary>A dispatch period: <paramref name="Hours"/> hours of plan month <paramref name="Month"/> (0-based); batch demand may move within <paramref name="Group"/>.</summary>
public sealed record Period(int Month, int Group, double Hours);

/// <summary>A supply option with its prices resolved to USD per unit the optimiser uses.</summary>
/// <param name="CapexPerGpu">All-in purchase price per accelerator (own), USD.</param>
/// <param name="FixedPerGpuMonth">Owned: colocation and operations per accelerator-month, USD.</param>
/// <param name="VariablePerGpuHour">Owned: power per accelerator-hour used; rented: the hourly price, USD.</param>
/// <param name="LifetimeMonths">Depreciation life, months.</param>
public sealed record SupplyOption(
    string Name, SupplyOptionConfig Config, AcceleratorConfig? Accelerator, string Supplier,
    decimal CapexPerGpu, decimal FixedPerGpuMonth, decimal VariablePerGpuHour, int LeadTimeMonths, double LifetimeMonths, double ResidualFraction)
{
    public string Kind => Config.Kind!;

    public bool HasGpus => Kind != "api";

    private const decimal HoursPerMonth = 365.25m * 24 / 12;

    /// <summary>
    /// Cost per accelerator-hour that does not depend on use, USD: owned, depreciation capex × (1 − residual) / life
    /// plus colocation and operations; joint venture, the same for its share of the facility's capex and opex, per GPU
    /// of the share; rented and API, 0 (reserved floors are counted by the optimiser, not here).
    /// </summary>
    public decimal FixedPerGpuHour => Kind switch
    {
        "own" => CapexPerGpu * (decimal)(1 - ResidualFraction) / ((decimal)LifetimeMonths * HoursPerMonth) + FixedPerGpuMonth / HoursPerMonth,
        "joint_venture" => (Config.FacilityCapex * (decimal)(1 - ResidualFraction) / (decimal)LifetimeMonths + Config.FacilityOpexPerMonth)
            / (Config.FacilityGpus * HoursPerMonth),
        _ => 0,
    };

    /// <summary>Book value of a purchase after <paramref name="ageMonths"/>, as a share of its price: straight line to the residual.</summary>
    public double BookFraction(int ageMonths) => 1 - (1 - ResidualFraction) * Math.Min(1, ageMonths / LifetimeMonths);
}

/// <summary>Everything the optimiser solves over: periods, demand per class and period, options and throughputs.</summary>
public sealed class PlanInputs
{
    public required Scenario Scenario { get; init; }
    public required PlanKnobs Knobs { get; init; }
    public required IReadOnlyList<Period> Periods { get; init; }
    public required IReadOnlyList<DemandClass> Classes { get; init; }

    /// <summary>Output tokens (millions) of class c in period p: Demand[c][p].</summary>
    public required double[][] Demand { get; init; }

    public required IReadOnlyList<SupplyOption> Options { get; init; }

    /// <summary>Output tokens per GPU-hour of option o for class c, Throughput[o][c]; 0 where the option cannot serve the class (SLO, memory, kind).</summary>
    public required double[][] Throughput { get; init; }

    /// <summary>Serving setup behind each non-zero throughput, for the report.</summary>
    public required ServingEstimate?[][] Serving { get; init; }

    /// <summary>API options: USD per million output tokens of class c (input at its ratio and cache hit rate included).</summary>
    public required decimal[][] ApiPricePerMillion { get; init; }

    public required double CacheHitRate { get; init; }

    /// <summary>Output and input tokens (millions) of each month, all classes.</summary>
    public required double[] MonthlyOutputMillions { get; init; }
    public required double[] MonthlyInputMillions { get; init; }

    public int Months => Scenario.Months;

    /// <summary>Builds the plan for <paramref name="scenario"/> with <paramref name="knobs"/> laid over it.</summary>
    public static PlanInputs Build(Scenario scenario, PlanKnobs knobs)
    {
        var config = scenario.Config;
        var cacheHit = Math.Clamp(config.Levers.CacheHitRate + knobs.CacheHitDelta, 0, 1);
        var classes = new List<DemandClass>();
        var classShares = new List<(string Workload, double Share)>();
        foreach (var (name, workload) in config.Workloads)
        {
            var w = workload!;
            var ratio = w.OutputTokensPerMonth > 0 ? (double)w.InputTokensPerMonth / w.OutputTokensPerMonth : 0;
            var smallShare = config.Levers.SmallModel is not null && config.Levers.SmallModel != w.Model ? config.Levers.SmallModelShare : 0;
            foreach (var (model, modelShare) in new[] { (w.Model!, 1 - smallShare), (config.Levers.SmallModel ?? w.Model!, smallShare) })
            {
                foreach (var batch in new[] { false, true })
                {
                    var share = modelShare * (batch ? w.BatchShare : 1 - w.BatchShare);
                    if (share <= 0)
                    {
                        continue;
                    }
                    classes.Add(new DemandClass(name, model, batch, ratio, batch ? null : w.LatencySloMsPerToken / 1000) { TtftSeconds = batch ? null : w.TtftSloMs / 1000 });
                    classShares.Add((name, share));
                }
            }
        }
        var (periods, demand, monthlyOut, monthlyIn) = BuildDemand(scenario, knobs, classes, classShares);
        var options = config.Supply.Select(kv => Resolve(kv.Key, kv.Value!, scenario, knobs)).ToList();
        var throughput = new double[options.Count][];
        var serving = new ServingEstimate?[options.Count][];
        var apiPrice = new decimal[options.Count][];
        for (var o = 0; o < options.Count; o++)
        {
            throughput[o] = new double[classes.Count];
            serving[o] = new ServingEstimate?[classes.Count];
            apiPrice[o] = new decimal[classes.Count];
            for (var c = 0; c < classes.Count; c++)
            {
                var option = options[o];
                var cls = classes[c];
                if (option.Kind == "api")
                {
                    if (option.Config.Models.Count == 0 || option.Config.Models.Contains(cls.Model))
                    {
                        apiPrice[o][c] = ApiPricePerMillionOutput(option.Config, cls, cacheHit) * (decimal)knobs.RentPriceScale;
                    }
                    continue;
                }
                if (option.Kind == "spot" && !cls.Batch)
                {
                    continue; // a preemption breaks a latency target: spot serves batch work only
                }
                var estimate = Estimate(config, config.Models[cls.Model]!, option.Accelerator!, cls, cacheHit);
                serving[o][c] = estimate;
                // A pool's measured figure (plan --from-ledger) replaces the estimate for the workload it served; it is what
                // the pool did under its own traffic, latency targets included, so it applies to interactive and batch alike.
                var perGpuHour = scenario.Measured.TryGetValue((option.Name, cls.Workload), out var measured) ? measured.OutputTokensPerGpuHour : estimate?.OutputTokensPerGpuHour ?? 0;
                // Preempted work is lost and redone: spot's effective throughput is (1 − preemption rate) of its own.
                throughput[o][c] = option.Kind == "spot" ? perGpuHour * (1 - option.Config.PreemptionRate) : perGpuHour;
            }
        }
        return new PlanInputs
        {
            Scenario = scenario, Knobs = knobs, Periods = periods, Classes = classes, Demand = demand, Options = options,
            Throughput = throughput, Serving = serving, ApiPricePerMillion = apiPrice, CacheHitRate = cacheHit,
            MonthlyOutputMillions = monthlyOut, MonthlyInputMillions = monthlyIn,
        };
    }

    /// <summary>
    /// The same plan on each month's load-duration curve: the month's periods sorted by demand per hour, the peak one a
    /// block of its own and the rest cut into <paramref name="blocks"/> − 1 blocks of about equal hours; a block's demand
    /// is the sum of its periods', over the sum of their hours. Batch work may move within the month. Used to take the
    /// capacity decisions of an hourly plan (time slices), never to dispatch it.
    /// </summary>
    public PlanInputs DurationCurve(int blocks)
    {
        var periods = new List<Period>();
        var demand = Classes.Select(_ => new List<double>()).ToArray();
        for (var m = 0; m < Months; m++)
        {
            var month = Enumerable.Range(0, Periods.Count).Where(p => Periods[p].Month == m)
                .OrderByDescending(p => Classes.Select((_, c) => Demand[c][p]).Sum() / Periods[p].Hours)
                .ToList();
            var rest = month.Count - 1;
            var cuts = new List<List<int>> { month.Take(1).ToList() };
            for (var b = 0; b < blocks - 1 && rest > 0; b++)
            {
                var from = 1 + b * rest / (blocks - 1);
                var to = 1 + (b + 1) * rest / (blocks - 1);
                if (to > from)
                {
                    cuts.Add(month.GetRange(from, to - from));
                }
            }
            foreach (var cut in cuts)
            {
                periods.Add(new Period(m, m, cut.Sum(p => Periods[p].Hours)));
                for (var c = 0; c < Classes.Count; c++)
                {
                    demand[c].Add(cut.Sum(p => Demand[c][p]));
                }
            }
        }
        return new PlanInputs
        {
            Scenario = Scenario, Knobs = Knobs, Periods = periods, Classes = Classes, Demand = demand.Select(d => d.ToArray()).ToArray(),
            Options = Options, Throughput = Throughput, Serving = Serving, ApiPricePerMillion = ApiPricePerMillion, CacheHitRate = CacheHitRate,
            MonthlyOutputMillions = MonthlyOutputMillions, MonthlyInputMillions = MonthlyInputMillions,
        };
    }

    /// <summary>The serving estimate for one model and class on one accelerator, with the scenario's levers.</summary>
    public static ServingEstimate? Estimate(ScenarioConfig config, ModelConfig model, AcceleratorConfig accelerator, DemandClass cls, double cacheHit)
    {
        var precision = config.Levers.Quantization ?? model.Precision;
        var load = new ServingLoad(model.ParametersB, model.ActiveParametersB ?? model.ParametersB, PerformanceModel.BytesPerParameter(precision),
            model.KvBytesPerToken, model.ContextTokens, cls.InputPerOutput, cacheHit) { Experts = model.Experts, ActiveExperts = model.ActiveExperts };
        return PerformanceModel.Estimate(load, accelerator, precision, config.Performance, config.Levers.BatchingEfficiency, new ServiceLevel(cls.SloSecondsPerToken, cls.TtftSeconds));
    }

    /// <summary>
    /// An API's price per million output tokens of a class: (input/output) × ((1 − h) × input + h × cached input) + output,
    /// times the batch multiplier for batch work. h is the cache hit rate; a missing cached price is the input price
    /// (docs/economics.md, "Missing prices").
    /// </summary>
    public static decimal ApiPricePerMillionOutput(SupplyOptionConfig api, DemandClass cls, double cacheHit)
    {
        var h = (decimal)cacheHit;
        var input = (1 - h) * api.InputPerM + h * (api.CachedInputPerM ?? api.InputPerM);
        var perMillion = (decimal)cls.InputPerOutput * input + api.OutputPerM;
        return cls.Batch ? perMillion * api.BatchMultiplier : perMillion;
    }

    private static SupplyOption Resolve(string name, SupplyOptionConfig option, Scenario scenario, PlanKnobs knobs)
    {
        var accelerator = option.Accelerator is null ? null : scenario.Accelerators.GetValueOrDefault(option.Accelerator);
        var lead = Math.Min(scenario.Months - 1, option.LeadTimeMonths + knobs.LeadTimeDeltaMonths);
        var supplier = option.Supplier ?? name;
        var rent = (decimal)knobs.RentPriceScale;
        switch (option.Kind)
        {
            case "own":
                var acc = accelerator!;
                var capex = (option.CapexPerGpu ?? acc.PurchasePrice!.Value * (1 + (decimal)option.ServerOverhead)) * (decimal)knobs.CapexScale;
                var kw = (decimal)(acc.PowerKw ?? 0);
                // Colocation is priced per kW of IT load per month; power per kWh drawn, PUE times the IT load, while in use.
                var fixedMonth = option.ColocationPerKwMonth * kw + option.OpsPerGpuMonth;
                var variableHour = option.PowerPricePerKwh * kw * (decimal)option.Pue;
                // At least a month only for the tornado's "life − 1 year" on a short life: a file's life is validated to be a month or more.
                var life = Math.Max(1, ((option.LifetimeYears ?? acc.LifetimeYears) + knobs.LifetimeDeltaYears) * 12);
                return new SupplyOption(name, option, accelerator, supplier, capex, fixedMonth, variableHour, lead, life, option.ResidualFraction ?? acc.ResidualFraction);
            case "joint_venture":
                var jvLife = Math.Max(1, ((option.LifetimeYears ?? accelerator!.LifetimeYears) + knobs.LifetimeDeltaYears) * 12);
                return new SupplyOption(name, option, accelerator, supplier, 0, 0, 0, lead, jvLife, option.ResidualFraction ?? accelerator!.ResidualFraction);
            default:
                return new SupplyOption(name, option, accelerator, supplier, 0, 0, option.PricePerGpuHour * rent, lead, 1, 0);
        }
    }

    private static (List<Period>, double[][], double[], double[]) BuildDemand(Scenario scenario, PlanKnobs knobs, List<DemandClass> classes, List<(string Workload, double Share)> shares)
    {
        var config = scenario.Config;
        var hourly = config.Resolution == "hourly";
        var periods = new List<Period>();
        // (class, period) → output tokens, millions; built per period below
        var rows = new List<double[]>();
        var monthlyOut = new double[scenario.Months];
        var monthlyIn = new double[scenario.Months];
        var pricing = config.Pricing;
        // Demand answers to price: × (1 + price change)^elasticity; a rise adds churn, which slows growth every month.
        var priceFactor = Math.Pow(1 + pricing.PriceChange, pricing.Elasticity);
        var extraChurn = pricing.ChurnPerPriceIncrease * Math.Max(0, pricing.PriceChange);
        var group = 0;
        for (var m = 0; m < scenario.Months; m++)
        {
            var days = scenario.DaysIn(m);
            // Per workload: output tokens this month (millions) and the hourly profile, normalised to sum 1 over a day.
            var monthTokens = new Dictionary<string, double>();
            var profiles = new Dictionary<string, double[]>();
            foreach (var (name, w) in config.Workloads)
            {
                var growth = 1 + w!.GrowthPerMonth + knobs.GrowthDelta - extraChurn;
                monthTokens[name] = w.OutputTokensPerMonth / 1e6 * Math.Pow(Math.Max(0, growth), m) * priceFactor * knobs.DemandScale;
                var profile = w.DailyProfile.Count == 24 ? w.DailyProfile.ToArray() : Enumerable.Repeat(1.0, 24).ToArray();
                var sum = profile.Sum();
                profiles[name] = profile.Select(x => x / sum).ToArray();
            }
            double SurgeFactor(string workload, int day, int hour)
            {
                var factor = 1.0;
                foreach (var s in config.Workloads[workload]!.Surges)
                {
                    if (s.Month - 1 == m && s.Day - 1 == day && hour >= s.Hour && hour < s.Hour + s.Hours)
                    {
                        factor *= s.Multiplier;
                    }
                }
                return factor;
            }
            double[] Row(int day, int hour, double dayWeight)
            {
                var row = new double[classes.Count];
                for (var c = 0; c < classes.Count; c++)
                {
                    var w = classes[c].Workload;
                    var surge = day < 0 ? 1 : SurgeFactor(w, day, hour);
                    row[c] = monthTokens[w] / days * profiles[w][hour] * shares[c].Share * surge * dayWeight;
                }
                return row;
            }
            if (hourly)
            {
                for (var day = 0; day < days; day++, group++)
                {
                    for (var hour = 0; hour < 24; hour++)
                    {
                        periods.Add(new Period(m, group, 1));
                        rows.Add(Row(day, hour, 1));
                    }
                }
                continue;
            }
            // Representative day: hour h stands for that hour on every day of the month. A surge hour becomes its own
            // one-hour period and its hour-of-day period keeps the other days.
            var surgeHours = new List<(int Day, int Hour)>();
            foreach (var w in config.Workloads.Values)
            {
                foreach (var s in w!.Surges.Where(s => s.Month - 1 == m))
                {
                    for (var h = s.Hour; h < s.Hour + s.Hours; h++)
                    {
                        if (!surgeHours.Contains((s.Day - 1, h)))
                        {
                            surgeHours.Add((s.Day - 1, h));
                        }
                    }
                }
            }
            for (var hour = 0; hour < 24; hour++)
            {
                var ordinaryDays = days - surgeHours.Count(s => s.Hour == hour);
                periods.Add(new Period(m, group, ordinaryDays));
                rows.Add(Row(-1, hour, ordinaryDays));
            }
            foreach (var (day, hour) in surgeHours)
            {
                periods.Add(new Period(m, group, 1));
                rows.Add(Row(day, hour, 1));
            }
            group++;
        }
        var demand = new double[classes.Count][];
        for (var c = 0; c < classes.Count; c++)
        {
            demand[c] = rows.Select(r => r[c]).ToArray();
            // Monthly totals from the periods, so surge tokens count in revenue and supplier caps too.
            for (var p = 0; p < periods.Count; p++)
            {
                monthlyOut[periods[p].Month] += demand[c][p];
                monthlyIn[periods[p].Month] += demand[c][p] * classes[c].InputPerOutput;
            }
        }
        return (periods, demand, monthlyOut, monthlyIn);
    }
}
