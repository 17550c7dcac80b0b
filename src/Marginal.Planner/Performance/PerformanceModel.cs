using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Performance;

/// <summary>How a model is served on one accelerator type: replica size, batch, bound and throughput.</summary>
/// <param name="GpusPerReplica">Accelerators holding one copy of the weights (tensor parallel group).</param>
/// <param name="Batch">Sequences decoded together per replica.</param>
/// <param name="DecodeTokensPerSecond">Output tokens per second per replica while decoding.</param>
/// <param name="StepSeconds">Time of one decode step (time per output token seen by each sequence).</param>
/// <param name="OutputTokensPerGpuHour">Output tokens one accelerator serves per hour, prefill of the uncached input included.</param>
/// <param name="Bound">"memory" or "compute": which roofline limits the decode step.</param>
public sealed record ServingEstimate(int GpusPerReplica, int Batch, double DecodeTokensPerSecond, double StepSeconds, double OutputTokensPerGpuHour, string Bound);

/// <summary>What the performance model needs of one serving setup.</summary>
/// <param name="ParametersB">Total parameters, billions: all of them are read per decode step at serving batch sizes (for MoE, every expert is touched once the batch is in the tens).</param>
/// <param name="ActiveParametersB">Parameters active per token, billions: 2 FLOP each per token.</param>
/// <param name="BytesPerParameter">2 (bf16), 1 (fp8), 0.5 (fp4).</param>
/// <param name="KvBytesPerToken">KV-cache bytes per token of context.</param>
/// <param name="ContextTokens">Mean tokens held in the KV cache per running sequence.</param>
/// <param name="InputPerOutput">Input tokens per output token of the workload.</param>
/// <param name="CacheHitRate">Share of input tokens served from the prefix cache: no prefill compute.</param>
public sealed record ServingLoad(double ParametersB, double ActiveParametersB, double BytesPerParameter, double KvBytesPerToken, double ContextTokens, double InputPerOutput, double CacheHitRate);

/// <summary>
/// The roofline model of LLM serving (docs/planner.md, "Performance model"). Per replica of g accelerators:
/// <code>
///   decode step time  t(B) = max( (W + B·KV) / (g·BW·η_bw),  2·N_active·B / (g·F·η_f) )
///   decode tok/s           = B / t(B) = min( B·BW' / (W + B·KV), F' / (2·N_active) )
///   prefill seconds / output token = (input/output) · (1 − cache hit) · 2·N_active / (g·F·η_f)
/// </code>
/// W: weight bytes; KV: KV bytes per sequence; BW, F: peak bandwidth and dense FLOP/s per accelerator; η: efficiencies.
/// The batch is the largest that fits memory, is at most max_batch and, for interactive traffic, keeps t(B) within the
/// latency target (time per output token). Prefill shares the replica's compute with decode (chunked prefill).
/// </summary>
public static class PerformanceModel
{
    private const int NodeSize = 8;
    private static readonly int[] GroupSizes = [1, 2, 4, 8, 16, 32, 64];

    public static double BytesPerParameter(string precision) => precision switch
    {
        "fp8" => 1,
        "fp4" => 0.5,
        _ => 2,
    };

    /// <summary>Dense FLOP/s for <paramref name="precision"/>, falling back to the next wider precision the part has (fp4 → fp8 → bf16).</summary>
    public static double DenseTflops(AcceleratorConfig accelerator, string precision)
    {
        foreach (var p in precision switch { "fp4" => new[] { "fp4", "fp8", "bf16" }, "fp8" => ["fp8", "bf16"], _ => ["bf16"] })
        {
            if (accelerator.DenseTflops.TryGetValue(p, out var tflops))
            {
                return tflops;
            }
        }
        return accelerator.DenseTflops["bf16"];
    }

    /// <summary>
    /// Roofline decode throughput of one replica, tokens/s: min(B·BW / (W + B·KV), F / 2N).
    /// Bandwidth in bytes/s, FLOP/s, bytes and parameters as plain numbers (not billions).
    /// </summary>
    public static double DecodeTokensPerSecond(int batch, double bandwidthBytesPerSecond, double flopsPerSecond, double weightBytes, double kvBytesPerSequence, double activeParameters) =>
        Math.Min(batch * bandwidthBytesPerSecond / (weightBytes + batch * kvBytesPerSequence), flopsPerSecond / (2 * activeParameters));

    /// <summary>
    /// The best serving setup (over tensor-parallel groups of 1 to 8, or the smallest larger group that fits) by output tokens per accelerator-hour, or null
    /// when the model fits no group or cannot meet <paramref name="sloSecondsPerToken"/> even at batch 1.
    /// <paramref name="sloSecondsPerToken"/> null: no latency target (batch tier).
    /// </summary>
    public static ServingEstimate? Estimate(ServingLoad load, AcceleratorConfig accelerator, string precision, PerformanceConfig performance, double batchingEfficiency, double? sloSecondsPerToken)
    {
        var weightBytes = load.ParametersB * 1e9 * load.BytesPerParameter;
        var kvPerSequence = load.KvBytesPerToken * load.ContextTokens;
        var activeParameters = load.ActiveParametersB * 1e9;
        var computeEfficiency = Math.Min(1, performance.ComputeEfficiency * batchingEfficiency);
        var bandwidthEfficiency = Math.Min(1, performance.BandwidthEfficiency * batchingEfficiency);
        ServingEstimate? best = null;
        foreach (var g in GroupSizes)
        {
            // Tensor parallelism scales within a node (8 accelerators on NVLink or Infinity Fabric); larger groups are
            // only for models that fit no node, and then the smallest group that fits is taken.
            if (g > NodeSize && best is not null)
            {
                break;
            }
            var memory = g * accelerator.MemoryGb * 1e9 * performance.MemoryUtilisation;
            var maxBatch = (int)Math.Min(performance.MaxBatch, Math.Floor((memory - weightBytes) / kvPerSequence));
            if (maxBatch < 1)
            {
                continue;
            }
            var bandwidth = g * accelerator.BandwidthTbS * 1e12 * bandwidthEfficiency;
            var flops = g * DenseTflops(accelerator, precision) * 1e12 * computeEfficiency;
            double Step(int b) => Math.Max((weightBytes + b * kvPerSequence) / bandwidth, 2 * activeParameters * b / flops);
            var batch = maxBatch;
            if (sloSecondsPerToken is { } slo)
            {
                if (Step(1) > slo)
                {
                    continue;
                }
                // t(B) grows with B: the largest B with t(B) ≤ SLO, by bisection.
                int low = 1, high = maxBatch;
                while (low < high)
                {
                    var mid = (low + high + 1) / 2;
                    if (Step(mid) <= slo) { low = mid; } else { high = mid - 1; }
                }
                batch = low;
            }
            var decode = DecodeTokensPerSecond(batch, bandwidth, flops, weightBytes, kvPerSequence, activeParameters);
            var prefillSecondsPerOutput = load.InputPerOutput * (1 - load.CacheHitRate) * 2 * activeParameters / flops;
            var secondsPerOutput = 1 / decode + prefillSecondsPerOutput;
            var perGpuHour = 3600 / secondsPerOutput / g;
            var step = Step(batch);
            var bound = (weightBytes + batch * kvPerSequence) / bandwidth >= 2 * activeParameters * batch / flops ? "memory" : "compute";
            if (best is null || perGpuHour > best.OutputTokensPerGpuHour)
            {
                best = new ServingEstimate(g, batch, decode, step, perGpuHour, bound);
            }
        }
        return best;
    }

    /// <summary>USD per million output tokens for capacity costing <paramref name="usdPerHour"/> that serves <paramref name="outputTokensPerSecond"/>.</summary>
    public static decimal CostPerMillionTokens(decimal usdPerHour, double outputTokensPerSecond) =>
        outputTokensPerSecond <= 0 ? 0 : usdPerHour / (decimal)(outputTokensPerSecond * 3600) * 1_000_000m;

    /// <summary>
    /// Break-even utilisation of owning against renting, u* = F / (R − v): F the fixed cost of an owned accelerator per
    /// hour (depreciation, colocation, operations), v its variable cost per hour used (power), R the rent per hour.
    /// Above u* owning is cheaper. Null when renting is no dearer than owning's variable cost (R ≤ v): owning never pays.
    /// </summary>
    public static double? BreakEvenUtilisation(decimal fixedPerHour, decimal variablePerHour, decimal rentPerHour) =>
        rentPerHour <= variablePerHour ? null : (double)(fixedPerHour / (rentPerHour - variablePerHour));
}
