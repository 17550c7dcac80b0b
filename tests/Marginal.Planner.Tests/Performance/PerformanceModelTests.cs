using Marginal.Planner.Hardware;
using Marginal.Planner.Optimisation;
using Marginal.Planner.Performance;
using Marginal.Planner.Scenarios;
using Marginal.Planner.Tests.Scenarios;

namespace Marginal.Planner.Tests.Performance;

/// <summary>The parts of the performance model, each against a figure worked by hand from the catalogues.</summary>
public sealed class PerformanceModelTests
{
    private static readonly AcceleratorConfig H100 = AcceleratorCatalogue.Shipped["h100-sxm"];

    [Fact]
    public void KvBytesPerToken_Llama3_70bFp8_LayersTimesKvHeadsTimesHeadDimTimesTwo()
    {
        // 80 layers × 8 KV heads × 128 × 2 (K and V) × 1 byte.
        Assert.Equal(163_840, ModelCatalogue.Shipped["llama-3.3-70b"].KvBytesPerToken("fp8"));
        // DeepSeek-V3 (MLA): 61 layers × 576 latent values × 2 bytes.
        Assert.Equal(70_272, ModelCatalogue.Shipped["deepseek-v3"].KvBytesPerToken("bf16"));
    }

    [Fact]
    public void Estimate_NoLatencyTarget_BatchIsWhatTheKvCacheHolds()
    {
        // Llama 3.3 70B fp8 on one H100: 80 GB × 0.9 − 70.6 GB of weights = 1.4 GB for KV; 1,000 in + 1,000 out holds
        // 1,500 tokens on average × 163,840 bytes = 245.8 MB a sequence: 5 sequences.
        var load = ModelCatalogue.Shipped["llama-3.3-70b"].Load("fp8", "fp8", 1000, 1000);

        var estimate = PerformanceModel.Estimate(load, H100, "fp8", new PerformanceConfig(), 1, ServiceLevel.None, tensorParallel: 1)!;

        Assert.Equal(5, estimate.Batch);
        Assert.Equal("memory", estimate.BatchLimit);
    }

    [Fact]
    public void WeightBytesRead_Moe_ActiveAtBatchOneAllExpertsAtLargeBatch()
    {
        var qwen = ModelCatalogue.Shipped["qwen3-235b-a22b"];
        var load = qwen.Load("fp8", "fp8", 1000, 1000);

        // One token reads the shared part and its 8 experts: the 22 B active parameters, 1 byte each.
        Assert.Equal(22e9, PerformanceModel.WeightBytesRead(load, 1), 1e6);
        // 2,048 tokens touch every one of the 128 experts: all 235 B.
        Assert.Equal(235e9, PerformanceModel.WeightBytesRead(load, 2048), 1e8);
    }

    [Fact]
    public void Estimate_Precision_Fp8HalvesWeightsAndUsesTheFp8Peak()
    {
        var shape = ModelCatalogue.Shipped["llama-3.1-8b"];
        var bf16 = PerformanceModel.Estimate(shape.Load("bf16", "bf16", 1000, 100), H100, "bf16", new PerformanceConfig(), 1, ServiceLevel.None, 1)!;
        var fp8 = PerformanceModel.Estimate(shape.Load("fp8", "fp8", 1000, 100), H100, "fp8", new PerformanceConfig(), 1, ServiceLevel.None, 1)!;

        Assert.Equal(2, PerformanceModel.BytesPerParameter("bf16"));
        Assert.Equal(0.5, PerformanceModel.BytesPerParameter("int4"));
        Assert.Equal(H100.DenseTflops["bf16"], PerformanceModel.DenseTflops(H100, "int4"));
        Assert.True(fp8.OutputTokensPerGpuHour > 1.5 * bf16.OutputTokensPerGpuHour, $"{fp8.OutputTokensPerGpuHour} vs {bf16.OutputTokensPerGpuHour}");
    }

    [Fact]
    public void TensorParallelEfficiency_EightWay_OneOverOnePlusThreeA()
    {
        Assert.Equal(1, PerformanceModel.TensorParallelEfficiency(1, 0.256));
        Assert.Equal(1 / (1 + 3 * 0.256), PerformanceModel.TensorParallelEfficiency(8, 0.256), 12);
    }

    [Fact]
    public void Estimate_TimeToFirstTokenTarget_LimitsTheBatch()
    {
        var load = ModelCatalogue.Shipped["llama-3.1-8b"].Load("fp8", "fp8", 4000, 500);
        var free = PerformanceModel.Estimate(load, H100, "fp8", new PerformanceConfig(), 1, ServiceLevel.None, 1)!;
        // A target just above the prefill alone leaves little room for the decode step it waits for.
        var prefill = free.TimeToFirstTokenSeconds - free.StepSeconds;

        var tight = PerformanceModel.Estimate(load, H100, "fp8", new PerformanceConfig(), 1, new ServiceLevel(null, prefill + 0.010), 1)!;

        Assert.Equal("ttft", tight.BatchLimit);
        Assert.True(tight.TimeToFirstTokenSeconds <= prefill + 0.010);
        Assert.True(tight.Batch < free.Batch);
        Assert.Null(PerformanceModel.Estimate(load, H100, "fp8", new PerformanceConfig(), 1, new ServiceLevel(null, prefill / 2), 1));
    }

    [Fact]
    public void PlanInputs_ScenarioTtftTarget_ReachesTheEstimate()
    {
        var free = PlanInputs.Build(TestScenarios.Parse(TestScenarios.OnDemand), PlanKnobs.None);
        var interactive = free.Classes.ToList().FindIndex(c => !c.Batch);
        var estimate = free.Serving[0][interactive]!;
        // A target 2 ms above the prefill alone leaves little room for the decode step it waits for.
        var target = (estimate.TimeToFirstTokenSeconds - estimate.StepSeconds + 0.002) * 1000;
        var workload = TestScenarios.Workload().Replace("latency_slo_ms_per_token:",
            $"ttft_slo_ms: {target.ToString(System.Globalization.CultureInfo.InvariantCulture)}\n    latency_slo_ms_per_token:", StringComparison.Ordinal);

        var tight = PlanInputs.Build(TestScenarios.Parse(TestScenarios.OnDemand, workload), PlanKnobs.None);

        Assert.Equal("ttft", tight.Serving[0][interactive]!.BatchLimit);
        Assert.True(tight.Throughput[0][interactive] < free.Throughput[0][interactive]);
    }
}
