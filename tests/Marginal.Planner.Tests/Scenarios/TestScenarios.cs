using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Tests.Scenarios;

/// <summary>Small scenario files written inline: one 8B model, one workload, the supply a test needs.</summary>
internal static class TestScenarios
{
    public const string Header = """
        name: test
        start: 2027-01
        horizon_months: 3
        models:
          m: { parameters_b: 8, precision: bf16, kv_bytes_per_token: 131072, context_tokens: 2000 }
        """;

    /// <summary>100 B output tokens a month (about 25 H100s busy), 3 input per output, flat or peaked, optional surge.</summary>
    public static string Workload(string surges = "[]", bool peaked = false) => $$"""
        workloads:
          chat:
            model: m
            input_tokens_per_month: 300000000000
            output_tokens_per_month: 100000000000
            latency_slo_ms_per_token: 50
            surges: {{surges}}
            {{(peaked ? "daily_profile: [1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1]" : "")}}

        """;

    public const string OnDemand = """
          od:
            kind: on_demand
            accelerator: h100-sxm
            price_per_gpu_hour: 3
            source: test
            as_of: "2026-11"

        """;

    public static Scenario Parse(string supply, string workload = "", string extra = "") =>
        ScenarioLoader.Parse($"{Header}\n{(workload.Length > 0 ? workload : Workload())}\nsupply:\n{supply}\n{extra}", "test.yaml");
}
