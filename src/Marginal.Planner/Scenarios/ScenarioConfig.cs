namespace Marginal.Planner.Scenarios;

// What the user wrote in a scenario file (YAML, snake_case keys). Money is decimal USD; physical quantities are double.
// Defaults here are the ones documented in docs/planner.md; ScenarioLoader validates every field and names the allowed values.

/// <summary>A scenario file: demand, models, hardware, supply options, levers, pricing and finance.</summary>
public sealed class ScenarioConfig
{
    public string? Name { get; set; }
    public string? Description { get; set; }

    /// <summary>First month of the plan, <c>YYYY-MM</c>.</summary>
    public string Start { get; set; } = "2027-01";

    public int HorizonMonths { get; set; } = 24;

    /// <summary><c>day_profile</c>: one representative day of 24 hours per month (each hour weighted by the days in the month); <c>hourly</c>: every hour.</summary>
    public string Resolution { get; set; } = "day_profile";

    public Dictionary<string, WorkloadConfig?> Workloads { get; set; } = [];
    public Dictionary<string, ModelConfig?> Models { get; set; } = [];

    /// <summary>Entries added to, or replacing, the shipped accelerator catalogue.</summary>
    public Dictionary<string, AcceleratorConfig?> Accelerators { get; set; } = [];

    public Dictionary<string, SupplyOptionConfig?> Supply { get; set; } = [];

    /// <summary>Largest share of a month's served output tokens one supplier may carry (supplier diversity), by supplier name.</summary>
    public Dictionary<string, double> SupplierCaps { get; set; } = [];

    public LeversConfig Levers { get; set; } = new();
    public PricingConfig Pricing { get; set; } = new();
    public FinanceConfig Finance { get; set; } = new();
    public PerformanceConfig Performance { get; set; } = new();

    /// <summary>A copy whose sections can be replaced without changing this one; the sections themselves are shared.</summary>
    internal ScenarioConfig Copy() => (ScenarioConfig)MemberwiseClone();
}

/// <summary>One class of traffic: its volume, growth, shape over the day, surges, latency target and batchable share.</summary>
public sealed class WorkloadConfig
{
    public string? Model { get; set; }
    public long InputTokensPerMonth { get; set; }
    public long OutputTokensPerMonth { get; set; }

    /// <summary>Compound growth per month, e.g. 0.08 for 8%.</summary>
    public double GrowthPerMonth { get; set; }

    /// <summary>24 relative weights, hour 0 to 23 (UTC); normalised on load. Default flat.</summary>
    public List<double> DailyProfile { get; set; } = [];

    public List<SurgeConfig> Surges { get; set; } = [];

    /// <summary>Time per output token the interactive share must meet, milliseconds. Default 50 (20 tokens/s, faster than reading): assumption.</summary>
    public double LatencySloMsPerToken { get; set; } = 50;

    /// <summary>Time to first token the interactive share must meet, milliseconds (prefill of a request plus the decode step it waits for); null: no target.</summary>
    public double? TtftSloMs { get; set; }

    /// <summary>Share of the tokens that can wait for a batch tier: served any hour of the same day, no latency target.</summary>
    public double BatchShare { get; set; }
}

/// <summary>A surge: demand times <see cref="Multiplier"/> for <see cref="Hours"/> hours from <see cref="Hour"/> on day <see cref="Day"/> of plan month <see cref="Month"/> (1-based).</summary>
public sealed class SurgeConfig
{
    public int Month { get; set; } = 1;
    public int Day { get; set; } = 1;
    public int Hour { get; set; } = 12;
    public int Hours { get; set; } = 4;
    public double Multiplier { get; set; } = 2;
}

/// <summary>A model's size and memory footprint.</summary>
public sealed class ModelConfig
{
    /// <summary>Total parameters, billions.</summary>
    public double ParametersB { get; set; }

    /// <summary>Parameters active per token, billions (MoE); default: all of them.</summary>
    public double? ActiveParametersB { get; set; }

    /// <summary>Mixture of experts: routed experts per MoE layer and how many each token uses (0: dense). A decode step of B tokens then reads the experts they touch, not all.</summary>
    public int Experts { get; set; }
    public int ActiveExperts { get; set; }

    /// <summary>Weight precision: bf16, fp16, fp8, fp4 or int4 (bytes per parameter 2, 2, 1, 0.5, 0.5).</summary>
    public string Precision { get; set; } = "bf16";

    /// <summary>KV-cache bytes per token of context, at the model's KV precision.</summary>
    public double KvBytesPerToken { get; set; }

    /// <summary>Mean tokens of context held in the KV cache per running sequence.</summary>
    public double ContextTokens { get; set; } = 2048;

    public string QualityTier { get; set; } = "standard";
}

/// <summary>An accelerator's figures; every figure needs its source and date.</summary>
public sealed class AcceleratorConfig
{
    public string? Vendor { get; set; }
    public double MemoryGb { get; set; }
    public double BandwidthTbS { get; set; }

    /// <summary>Dense TFLOP/s by precision (bf16, fp8, fp4); a precision the part lacks is left out.</summary>
    public Dictionary<string, double> DenseTflops { get; set; } = [];

    /// <summary>Board power, kW; null where the vendor publishes none.</summary>
    public double? PowerKw { get; set; }

    /// <summary>Purchase price per accelerator in a server, USD; null where it cannot be bought (rent only).</summary>
    public decimal? PurchasePrice { get; set; }

    /// <summary>Depreciation life. Default 5 years: assumption (hyperscalers use 5–6; Microsoft's FY2022 10-K moved servers to 6).</summary>
    public double LifetimeYears { get; set; } = 5;

    /// <summary>Value left at the end of life, as a share of the purchase price. Default 0.1: assumption.</summary>
    public double ResidualFraction { get; set; } = 0.1;

    /// <summary>
    /// Share of the performance model's efficiencies this part's serving software reaches, against NVIDIA's TensorRT-LLM
    /// (1). Fitted on published results (docs/planner.md, "Validation"); default 1.
    /// </summary>
    public double SoftwareEfficiency { get; set; } = 1;
    public string? SoftwareEfficiencySource { get; set; }

    /// <summary>This accelerator with another software efficiency (the calibration tries values).</summary>
    internal AcceleratorConfig WithSoftwareEfficiency(double value)
    {
        var copy = (AcceleratorConfig)MemberwiseClone();
        copy.SoftwareEfficiency = value;
        return copy;
    }

    public string? SpecSource { get; set; }
    public string? SpecAsOf { get; set; }
    public string? PriceSource { get; set; }
    public string? PriceAsOf { get; set; }
}

/// <summary>One way to get capacity. Which fields apply depends on <see cref="Kind"/> (docs/planner.md lists them).</summary>
public sealed class SupplyOptionConfig
{
    /// <summary>own, reserved, on_demand, spot, api, joint_venture.</summary>
    public string? Kind { get; set; }

    /// <summary>Who supplies it, for supplier caps; default the option's name.</summary>
    public string? Supplier { get; set; }

    public string? Accelerator { get; set; }

    /// <summary>Where the prices came from (document or URL, or "assumption: why") and when.</summary>
    public string? Source { get; set; }
    public string? AsOf { get; set; }

    // rented capacity (reserved, on_demand, spot)
    public decimal PricePerGpuHour { get; set; }
    public int TermMonths { get; set; } = 12;

    /// <summary>Share of the contracted GPU-hours paid whether used or not (reserved, joint venture offtake).</summary>
    public double TakeOrPay { get; set; } = 1;

    public int MinGpus { get; set; }
    public int? MaxGpus { get; set; }
    public int LeadTimeMonths { get; set; }
    public double PreemptionRate { get; set; }

    /// <summary>A dedicated contract for identified capacity is a lease (on the balance sheet, IFRS 16); else an off-balance-sheet commitment.</summary>
    public bool Lease { get; set; }

    // owned capacity
    public decimal? CapexPerGpu { get; set; }
    public int GpusPerNode { get; set; } = 8;

    /// <summary>
    /// Server and network share on top of the accelerator's price. Default 0.3: assumption (CPUs, memory, NICs,
    /// switches and storage of an 8-GPU server), not taken from a published bill of materials.
    /// </summary>
    public double ServerOverhead { get; set; } = 0.3;

    public decimal ColocationPerKwMonth { get; set; }
    public decimal PowerPricePerKwh { get; set; }
    /// <summary>Power usage effectiveness. Default 1.3: assumption near the industry average of ~1.5 for existing sites and ~1.2–1.3 for new ones (Uptime Institute Global Data Center Survey, 2024).</summary>
    public double Pue { get; set; } = 1.3;
    public decimal OpsPerGpuMonth { get; set; }
    public double? LifetimeYears { get; set; }
    public double? ResidualFraction { get; set; }

    // third-party API
    public decimal InputPerM { get; set; }
    public decimal? CachedInputPerM { get; set; }
    public decimal OutputPerM { get; set; }
    public decimal BatchMultiplier { get; set; } = 1;
    public long? MaxTokensPerMinute { get; set; }

    /// <summary>Model the API serves; default the workload's own model.</summary>
    public List<string> Models { get; set; } = [];

    // joint venture
    public int FacilityGpus { get; set; }
    public double Share { get; set; }
    public decimal FacilityCapex { get; set; }
    public decimal FacilityOpexPerMonth { get; set; }
    public bool OffBalanceSheet { get; set; } = true;
    public decimal Guarantee { get; set; }
}

/// <summary>Levers that lower the cost of a token.</summary>
public sealed class LeversConfig
{
    /// <summary>Share of input tokens served from a prompt cache: no prefill on owned capacity, the cached price on APIs.</summary>
    public double CacheHitRate { get; set; }

    /// <summary>Model that simple requests are routed to, and the share of tokens routed there.</summary>
    public string? SmallModel { get; set; }
    public double SmallModelShare { get; set; }

    /// <summary>Multiplier on the compute and bandwidth efficiencies from better batching (1 = as calibrated).</summary>
    public double BatchingEfficiency { get; set; } = 1;

    /// <summary>Serve every model at this precision instead (fp8, fp4); null keeps each model's own.</summary>
    public string? Quantization { get; set; }

    internal LeversConfig Copy() => (LeversConfig)MemberwiseClone();
}

/// <summary>What users pay and how demand answers to price.</summary>
public sealed class PricingConfig
{
    public List<PlanConfig> Plans { get; set; } = [];

    /// <summary>Change of every plan price against the plans as written, e.g. -0.2 for a 20% cut.</summary>
    public double PriceChange { get; set; }

    /// <summary>Price elasticity of demand: demand × (1 + price_change)^elasticity.</summary>
    public double Elasticity { get; set; } = -1;

    /// <summary>Extra monthly churn per unit of price increase (0.1 here and a +20% price: 2% more churn a month).</summary>
    public double ChurnPerPriceIncrease { get; set; }
}

/// <summary>A pricing plan: the share of tokens its users send and their prices; a free tier has zero prices.</summary>
public sealed class PlanConfig
{
    public string? Name { get; set; }
    public double Share { get; set; }
    public decimal InputPerM { get; set; }
    public decimal OutputPerM { get; set; }
}

/// <summary>Money outside inference.</summary>
public sealed class FinanceConfig
{
    /// <summary>Annual discount rate for net present values. Default 0.12: assumption, a venture-backed company's cost of capital is usually higher; set your own.</summary>
    public double DiscountRate { get; set; } = 0.12;

    public decimal StartingCash { get; set; }
    public decimal OpexPerMonth { get; set; }
    public decimal RndPerMonth { get; set; }

    /// <summary>Most capex (own purchases and joint-venture contributions) the plan may spend; null: no limit.</summary>
    public decimal? CapexBudget { get; set; }

    public List<FundingConfig> Funding { get; set; } = [];
}

/// <summary>Cash that arrives in a plan month (1-based).</summary>
public sealed class FundingConfig
{
    public int Month { get; set; } = 1;
    public decimal Amount { get; set; }
    public string Kind { get; set; } = "equity";
}

/// <summary>Efficiency factors of the performance model (docs/planner.md says where the defaults come from).</summary>
public sealed class PerformanceConfig
{
    public double ComputeEfficiency { get; set; } = PerformanceDefaults.ComputeEfficiency;
    public double BandwidthEfficiency { get; set; } = PerformanceDefaults.BandwidthEfficiency;
    public double MemoryUtilisation { get; set; } = PerformanceDefaults.MemoryUtilisation;
    public int MaxBatch { get; set; } = PerformanceDefaults.MaxBatch;

    /// <summary>All-reduce cost of tensor parallelism, a in η_tp(g) = 1 / (1 + a · log2 g).</summary>
    public double AllReduceCost { get; set; } = PerformanceDefaults.AllReduceCost;
}

/// <summary>Default efficiency factors and where each comes from.</summary>
public static class PerformanceDefaults
{
    // ComputeEfficiency, BandwidthEfficiency and AllReduceCost are fitted (PerformanceCalibration) on the fit rows of
    // Performance/published-throughput.yaml: TensorRT-LLM's and AMD's published throughput tables (2025); docs/planner.md,
    // "Validation", shows the fit and the predictions. PublishedThroughputTests checks these constants equal the fit.

    /// <summary>Achieved share of dense peak FLOP/s (at the serving precision) in prefill and compute-bound decode. Fitted.</summary>
    public const double ComputeEfficiency = 0.595;

    /// <summary>Achieved share of peak HBM bandwidth in memory-bound decode. Fitted.</summary>
    public const double BandwidthEfficiency = 0.442;

    /// <summary>Share of accelerator memory usable for weights and KV cache (vLLM's default gpu_memory_utilization is 0.9).</summary>
    public const double MemoryUtilisation = 0.9;

    /// <summary>
    /// Largest batch considered (running sequences per model replica). The calibration's best limit on the offline
    /// (maximum-throughput) benchmarks is 1,024; scenarios keep 512, nearer what an interactive deployment runs: assumption.
    /// </summary>
    public const int MaxBatch = 512;

    /// <summary>All-reduce cost of tensor parallelism, a in η_tp(g) = 1 / (1 + a · log2 g): 8-way keeps 1 / (1 + 3a) = 57% of the summed peak. Fitted.</summary>
    public const double AllReduceCost = 0.256;
}
