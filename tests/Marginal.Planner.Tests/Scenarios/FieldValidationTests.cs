using System.Globalization;
using Marginal.Planner.Scenarios;
using YamlDotNet.Serialization;

namespace Marginal.Planner.Tests.Scenarios;

/// <summary>
/// Every numeric field of a scenario is checked on its own: a value out of range, or a required one left out, gives
/// exactly one line naming the file, that field's path and what is allowed; nothing else is reported.
/// </summary>
public sealed class FieldValidationTests
{
    /// <summary>A valid scenario with every kind of option, pricing and finance, as a tree a test can change one field of.</summary>
    private static Dictionary<string, object> Valid() => new()
    {
        ["name"] = "fields",
        ["start"] = "2027-01",
        ["horizon_months"] = 3,
        ["models"] = new Dictionary<string, object>
        {
            ["m"] = new Dictionary<string, object> { ["parameters_b"] = 8, ["kv_bytes_per_token"] = 131072, ["context_tokens"] = 2000, ["experts"] = 8, ["active_experts"] = 2 },
        },
        ["accelerators"] = new Dictionary<string, object>
        {
            ["custom"] = new Dictionary<string, object>
            {
                ["memory_gb"] = 80, ["bandwidth_tb_s"] = 3.35, ["dense_tflops"] = new Dictionary<string, object> { ["bf16"] = 989 }, ["power_kw"] = 0.7,
                ["purchase_price"] = 25000, ["lifetime_years"] = 5, ["residual_fraction"] = 0.1, ["software_efficiency"] = 0.9,
                ["spec_source"] = "test", ["spec_as_of"] = "2026-11", ["price_source"] = "test", ["price_as_of"] = "2026-11",
            },
        },
        ["workloads"] = new Dictionary<string, object>
        {
            ["chat"] = new Dictionary<string, object>
            {
                ["model"] = "m", ["input_tokens_per_month"] = 300_000_000_000, ["output_tokens_per_month"] = 100_000_000_000, ["growth_per_month"] = 0.05,
                ["latency_slo_ms_per_token"] = 50, ["ttft_slo_ms"] = 2000, ["batch_share"] = 0.2,
                ["surges"] = new List<object> { new Dictionary<string, object> { ["month"] = 2, ["day"] = 3, ["hour"] = 10, ["hours"] = 2, ["multiplier"] = 2 } },
            },
        },
        ["supply"] = new Dictionary<string, object>
        {
            ["own"] = Option("own", ("accelerator", "custom"), ("capex_per_gpu", 30000), ("gpus_per_node", 8), ("server_overhead", 0.3), ("lead_time_months", 1),
                ("colocation_per_kw_month", 150), ("power_price_per_kwh", 0.1), ("pue", 1.3), ("ops_per_gpu_month", 50), ("max_gpus", 64),
                ("lifetime_years", 5), ("residual_fraction", 0.1)),
            ["res"] = Option("reserved", ("accelerator", "h100-sxm"), ("price_per_gpu_hour", 2), ("term_months", 3), ("take_or_pay", 0.8), ("min_gpus", 8), ("max_gpus", 64), ("gpus_per_node", 8)),
            ["od"] = Option("on_demand", ("accelerator", "h100-sxm"), ("price_per_gpu_hour", 3)),
            ["spot"] = Option("spot", ("accelerator", "h100-sxm"), ("price_per_gpu_hour", 1.2), ("preemption_rate", 0.1)),
            ["api"] = Option("api", ("input_per_m", 0.1), ("cached_input_per_m", 0.05), ("output_per_m", 0.3), ("batch_multiplier", 0.5), ("max_tokens_per_minute", 1_000_000)),
            ["jv"] = Option("joint_venture", ("accelerator", "h100-sxm"), ("facility_gpus", 100), ("share", 0.3), ("facility_capex", 3_000_000),
                ("facility_opex_per_month", 20000), ("guarantee", 100000), ("lifetime_years", 5), ("residual_fraction", 0.1)),
        },
        ["supplier_caps"] = new Dictionary<string, object> { ["od"] = 0.9 },
        ["levers"] = new Dictionary<string, object> { ["cache_hit_rate"] = 0.3, ["batching_efficiency"] = 1 },
        ["pricing"] = new Dictionary<string, object>
        {
            ["plans"] = new List<object> { new Dictionary<string, object> { ["name"] = "pro", ["share"] = 1, ["input_per_m"] = 0.5, ["output_per_m"] = 2 } },
            ["price_change"] = 0, ["elasticity"] = -1, ["churn_per_price_increase"] = 0.1,
        },
        ["finance"] = new Dictionary<string, object>
        {
            ["discount_rate"] = 0.12, ["starting_cash"] = 1_000_000, ["opex_per_month"] = 10000, ["rnd_per_month"] = 10000, ["capex_budget"] = 5_000_000,
            ["funding"] = new List<object> { new Dictionary<string, object> { ["month"] = 2, ["amount"] = 1_000_000, ["kind"] = "equity" } },
        },
        ["performance"] = new Dictionary<string, object> { ["compute_efficiency"] = 0.43, ["bandwidth_efficiency"] = 0.7, ["memory_utilisation"] = 0.9, ["max_batch"] = 512, ["all_reduce_cost"] = 0.25 },
    };

    private static Dictionary<string, object> Option(string kind, params (string Key, object Value)[] fields)
    {
        var option = new Dictionary<string, object> { ["kind"] = kind, ["source"] = "test", ["as_of"] = "2026-11" };
        foreach (var (key, value) in fields)
        {
            option[key] = value;
        }
        return option;
    }

    private static string Yaml(Dictionary<string, object> tree) => new SerializerBuilder().Build().Serialize(tree);

    /// <summary>The mapping that holds the last part of <paramref name="path"/> (<c>a.b[0].c</c>), and that part.</summary>
    private static (Dictionary<string, object> Parent, string Key) Find(Dictionary<string, object> tree, string path)
    {
        var parts = path.Split('.');
        object node = tree;
        foreach (var part in parts[..^1])
        {
            var bracket = part.IndexOf('[', StringComparison.Ordinal);
            node = bracket < 0
                ? ((Dictionary<string, object>)node)[part]
                : ((List<object>)((Dictionary<string, object>)node)[part[..bracket]])[int.Parse(part[(bracket + 1)..^1], CultureInfo.InvariantCulture)];
        }
        return ((Dictionary<string, object>)node, parts[^1]);
    }

    [Fact]
    public void Parse_ValidBase_NoProblems() => ScenarioLoader.Parse(Yaml(Valid()), "bad.yaml");

    /// <summary>One row per numeric field: a value outside what it allows (the issue's own cases among them).</summary>
    [Theory]
    [InlineData("horizon_months", 121)]
    [InlineData("models.m.parameters_b", -8)]
    [InlineData("models.m.active_parameters_b", 9)]
    [InlineData("models.m.kv_bytes_per_token", 0)]
    [InlineData("models.m.context_tokens", -1)]
    [InlineData("models.m.experts", 1)]
    [InlineData("models.m.active_experts", 8)]
    [InlineData("accelerators.custom.memory_gb", 0)]
    [InlineData("accelerators.custom.bandwidth_tb_s", -1)]
    [InlineData("accelerators.custom.power_kw", -0.7)]
    [InlineData("accelerators.custom.purchase_price", -25000)]
    [InlineData("accelerators.custom.lifetime_years", 0.05)]
    [InlineData("accelerators.custom.residual_fraction", 1.5)]
    [InlineData("accelerators.custom.software_efficiency", 1.2)]
    [InlineData("workloads.chat.input_tokens_per_month", -1)]
    [InlineData("workloads.chat.output_tokens_per_month", 0)]
    [InlineData("workloads.chat.growth_per_month", -1)]
    [InlineData("workloads.chat.latency_slo_ms_per_token", 0)]
    [InlineData("workloads.chat.ttft_slo_ms", 0)]
    [InlineData("workloads.chat.batch_share", 1.5)]
    [InlineData("workloads.chat.surges[0].month", 4)]
    [InlineData("workloads.chat.surges[0].day", 29)]
    [InlineData("workloads.chat.surges[0].multiplier", 0.5)]
    [InlineData("supply.own.capex_per_gpu", -1000)]
    [InlineData("supply.own.gpus_per_node", 0)]
    [InlineData("supply.own.server_overhead", -0.5)]
    [InlineData("supply.own.lead_time_months", 3)]
    [InlineData("supply.own.colocation_per_kw_month", -1)]
    [InlineData("supply.own.power_price_per_kwh", -0.1)]
    [InlineData("supply.own.pue", 0.5)]
    [InlineData("supply.own.ops_per_gpu_month", -50)]
    [InlineData("supply.own.max_gpus", -8)]
    [InlineData("supply.own.lifetime_years", 0.05)]
    [InlineData("supply.own.residual_fraction", 1.5)]
    [InlineData("supply.res.price_per_gpu_hour", 0)]
    [InlineData("supply.res.term_months", 0)]
    [InlineData("supply.res.take_or_pay", 1.2)]
    [InlineData("supply.res.min_gpus", -8)]
    [InlineData("supply.res.max_gpus", 4)]
    [InlineData("supply.res.gpus_per_node", 0)]
    [InlineData("supply.od.price_per_gpu_hour", -3)]
    [InlineData("supply.spot.preemption_rate", 1)]
    [InlineData("supply.api.input_per_m", -0.1)]
    [InlineData("supply.api.cached_input_per_m", -0.05)]
    [InlineData("supply.api.output_per_m", 0)]
    [InlineData("supply.api.batch_multiplier", 1.5)]
    [InlineData("supply.api.max_tokens_per_minute", 0)]
    [InlineData("supply.jv.facility_gpus", 0)]
    [InlineData("supply.jv.share", 1.5)]
    [InlineData("supply.jv.facility_capex", -1)]
    [InlineData("supply.jv.facility_opex_per_month", -1)]
    [InlineData("supply.jv.guarantee", -1)]
    [InlineData("supply.jv.lifetime_years", 40)]
    [InlineData("supply.jv.residual_fraction", -0.1)]
    [InlineData("supplier_caps.od", 1.5)]
    [InlineData("levers.cache_hit_rate", -0.1)]
    [InlineData("levers.batching_efficiency", 3)]
    [InlineData("pricing.plans[0].share", 1.5)]
    [InlineData("pricing.plans[0].input_per_m", -0.5)]
    [InlineData("pricing.plans[0].output_per_m", -2)]
    [InlineData("pricing.price_change", -1)]
    [InlineData("pricing.elasticity", 0.5)]
    [InlineData("pricing.churn_per_price_increase", -0.1)]
    [InlineData("finance.discount_rate", 1.5)]
    [InlineData("finance.starting_cash", -1)]
    [InlineData("finance.opex_per_month", -1)]
    [InlineData("finance.rnd_per_month", -1)]
    [InlineData("finance.capex_budget", -1)]
    [InlineData("finance.funding[0].month", 0)]
    [InlineData("finance.funding[0].amount", -1)]
    [InlineData("performance.compute_efficiency", 1.5)]
    [InlineData("performance.bandwidth_efficiency", 0)]
    [InlineData("performance.memory_utilisation", -0.1)]
    [InlineData("performance.max_batch", 0)]
    [InlineData("performance.all_reduce_cost", -0.1)]
    public void Parse_FieldOutOfRange_OneLineNamingThatFieldAndWhatIsAllowed(string path, double value)
    {
        var tree = Valid();
        var (parent, key) = Find(tree, path);
        parent[key] = value;

        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(Yaml(tree), "bad.yaml"));

        var line = Assert.Single(ex.Problems);
        Assert.StartsWith($"bad.yaml: {path}: ", line, StringComparison.Ordinal);
        Assert.Contains("(allowed: ", line, StringComparison.Ordinal);
    }

    /// <summary>A required field left out reads "missing", not the empty text or 0 it would deserialise to.</summary>
    [Theory]
    [InlineData("models.m.parameters_b")]
    [InlineData("models.m.kv_bytes_per_token")]
    [InlineData("workloads.chat.model")]
    [InlineData("workloads.chat.output_tokens_per_month")]
    [InlineData("supply.od.kind")]
    [InlineData("supply.od.accelerator")]
    [InlineData("supply.od.price_per_gpu_hour")]
    [InlineData("supply.api.output_per_m")]
    [InlineData("supply.jv.facility_gpus")]
    [InlineData("supply.jv.share")]
    [InlineData("supply.jv.facility_capex")]
    public void Parse_RequiredFieldMissing_SaysMissing(string path)
    {
        var tree = Valid();
        var (parent, key) = Find(tree, path);
        parent.Remove(key);

        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(Yaml(tree), "bad.yaml"));

        var line = Assert.Single(ex.Problems);
        Assert.StartsWith($"bad.yaml: {path}: missing (allowed: ", line, StringComparison.Ordinal);
    }
}
