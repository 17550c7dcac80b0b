using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Performance;

/// <summary>How a model is served on one accelerator type: replica size, batch, bound and throughput.</summary>
/// <param name="GpusPerReplica">Accelerators holding one copy of the weights (tensor parallel group).</param>
/// <param name="Batch">Sequences decoded together per replica.</param>
/// <param name="DecodeTokensPerSecond">Output tokens per second per replica while decoding.</param>
/// <param name="StepSeconds">Time of one decode step (time per output token seen by each sequence).</param>
/// <param name="OutputTokensPerGpuHour">Output tokens one accelerator serves per hour, prefill of the uncached input included.</param>
/// <param name="Bound">"memory" or "compute": which roofline limits the decode step.</param>
/// <param name="TimeToFirstTokenSeconds">Prefill of one request's uncached input plus the decode step it waits for.</param>
/// <param name="BatchLimit">What set the batch: "memory" (KV cache), "max_batch", "tpot" or "ttft" (a latency target).</param>
public sealed record ServingEstimate(int GpusPerReplica, int Batch, double DecodeTokensPerSecond, double StepSeconds, double OutputTokensPerGpuHour, string Bound,
    double TimeToFirstTokenSeconds = 0, string BatchLimit = "memory");

/// <summary>What the performance model needs of one serving setup.</summary>
/// <param name="ParametersB">Total parameters, billions: the weights held in memory.</param>
/// <param name="ActiveParametersB">Parameters active per token, billions: 2 FLOP each per token.</param>
/// <param name="BytesPerParameter">Bytes per weight at the serving precision (<see cref="PerformanceModel.BytesPerParameter"/>).</param>
/// <param name="KvBytesPerToken">KV-cache bytes per token of context.</param>
/// <param name="ContextTokens">Mean tokens held in the KV cache per running sequence.</param>
/// <param name="InputPerOutput">Input tokens per output token of the workload.</param>
/// <param name="CacheHitRate">Share of input tokens served from the prefix cache: no prefill compute.</param>
public sealed record ServingLoad(double ParametersB, double ActiveParametersB, double BytesPerParameter, double KvBytesPerToken, double ContextTokens, double InputPerOutput, double CacheHitRate)
{
    /// <summary>Routed experts per MoE layer (0: a dense model).</summary>
    public int Experts { get; init; }

    /// <summary>Routed experts each token uses per MoE layer.</summary>
    public int ActiveExperts { get; init; }

    /// <summary>Input tokens of one request, for the time to first token; null: derived from the context and the input/output ratio.</summary>
    public double? InputTokens { get; init; }

    /// <summary>Prefill runs on other accelerators (prefill-decode disaggregation): these only decode.</summary>
    public bool DecodeOnly { get; init; }

    /// <summary>
    /// Attention FLOPs per pair of (query token, cached token): 4 × layers × query heads × head size (QKᵀ and the weighted sum
    /// of V, 2 FLOP per multiply-add each); 0: not counted (a model known only by its parameters and KV bytes).
    /// </summary>
    public double AttentionFlopsPerContextToken { get; init; }

    /// <summary>Precision attention is computed at (the KV cache's): its peak FLOP/s applies to the attention FLOPs.</summary>
    public string? AttentionPrecision { get; init; }

    /// <summary>
    /// Input tokens per request: the given figure, else from the mean context C held per sequence and the ratio r of input to
    /// output tokens. A sequence holds its input I plus, on average, half its output O = I / r: C = I + I / (2r), so I = C / (1 + 1 / (2r)).
    /// </summary>
    public double RequestInputTokens => InputTokens ?? (InputPerOutput > 0 ? ContextTokens / (1 + 1 / (2 * InputPerOutput)) : 0);
}

/// <summary>Latency targets a serving setup must meet; null: none (batch work).</summary>
/// <param name="SecondsPerOutputToken">Time per output token (TPOT): the decode step time.</param>
/// <param name="TimeToFirstTokenSeconds">Time to first token (TTFT): prefill of the request plus one decode step.</param>
public sealed record ServiceLevel(double? SecondsPerOutputToken, double? TimeToFirstTokenSeconds = null)
{
    public static readonly ServiceLevel None = new(null, null);
}

/// <summary>
/// The model of LLM serving (docs/planner.md, "Performance model"). Per replica of g accelerators at precision p:
/// <code>
///   η_tp(g)     = 1 / (1 + a · log2 g)                      all-reduce cost of tensor parallelism (a fitted)
///   F'          = g · F_p · η_f · η_tp(g)                    achieved FLOP/s (F_p: the catalogue's dense peak at p)
///   BW'         = g · BW · η_bw · η_tp(g)                    achieved memory bandwidth
///   read(B)     = D + X · (1 − (1 − k/E)^B)                  weight bytes read per decode step: dense part D, experts X,
///                                                            each of E experts touched by one of B tokens with chance k/E
///   t(B)        = max( (read(B) + B · KV) / BW',  2 · N_active · B / F' )      decode step time
///   prefill     = (1 − cache hit) · I · 2 · N_active / F'                       seconds per request of I input tokens
///   tok/s       = 1 / ( t(B) / B + prefill / O )                                output tokens per second per replica
///   B           = largest batch with W + B · KV ≤ g · memory · u, B ≤ max_batch, t(B) ≤ TPOT, prefill + t(B) ≤ TTFT
/// </code>
/// W: weight bytes (total parameters); KV: KV-cache bytes per sequence (layers × KV heads × head size × 2 × KV precision
/// bytes × context); N_active: active parameters (mixture of experts: compute and expert reads from the active ones, memory
/// from all). Prefill shares the replica's compute with decode (chunked prefill).
/// </summary>
public static class PerformanceModel
{
    private const int NodeSize = 8;
    private static readonly int[] GroupSizes = [1, 2, 4, 8, 16, 32, 64];

    /// <summary>Bytes per weight: 2 (bf16, fp16), 1 (fp8), 0.5 (fp4, int4).</summary>
    public static double BytesPerParameter(string precision) => precision switch
    {
        "fp8" => 1,
        "fp4" or "int4" => 0.5,
        _ => 2,
    };

    /// <summary>
    /// Dense FLOP/s for <paramref name="precision"/>, falling back to the next wider precision the part has (fp4 → fp8 →
    /// bf16). int4 is weight-only quantisation (AWQ, GPTQ): the weights are widened and multiplied at 16 bits, so bf16's peak.
    /// </summary>
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

    /// <summary>Share of a tensor-parallel group's summed peak that survives its all-reduces: 1 / (1 + a · log2 g).</summary>
    public static double TensorParallelEfficiency(int gpus, double allReduceCost) => 1 / (1 + allReduceCost * Math.Log2(gpus));

    /// <summary>
    /// Roofline decode throughput of one replica, tokens/s: min(B·BW / (W + B·KV), F / 2N).
    /// Bandwidth in bytes/s, FLOP/s, bytes and parameters as plain numbers (not billions).
    /// </summary>
    public static double DecodeTokensPerSecond(int batch, double bandwidthBytesPerSecond, double flopsPerSecond, double weightBytes, double kvBytesPerSequence, double activeParameters) =>
        Math.Min(batch * bandwidthBytesPerSecond / (weightBytes + batch * kvBytesPerSequence), flopsPerSecond / (2 * activeParameters));

    /// <summary>
    /// Weight bytes one decode step of <paramref name="batch"/> tokens reads. Dense: all of them. Mixture of experts with E
    /// routed experts of which each token uses k: total P = D + E·e and active A = D + k·e give one expert's parameters
    /// e = (P − A) / (E − k) and the always-read part D = A − k·e; each expert is read when at least one of the B tokens
    /// routes to it, with chance 1 − (1 − k/E)^B (routing taken as uniform).
    /// </summary>
    public static double WeightBytesRead(ServingLoad load, int batch)
    {
        var total = load.ParametersB * 1e9;
        if (load.Experts <= load.ActiveExperts || load.ActiveExperts < 1 || load.ActiveParametersB >= load.ParametersB)
        {
            return total * load.BytesPerParameter;
        }
        var expert = (total - load.ActiveParametersB * 1e9) / (load.Experts - load.ActiveExperts);
        var dense = load.ActiveParametersB * 1e9 - load.ActiveExperts * expert;
        var touched = 1 - Math.Pow(1 - (double)load.ActiveExperts / load.Experts, batch);
        return (dense + load.Experts * expert * touched) * load.BytesPerParameter;
    }

    /// <summary>
    /// The best serving setup (over tensor-parallel groups of 1 to 8, or the smallest larger group that fits) by output tokens per accelerator-hour, or null
    /// when the model fits no group or cannot meet <paramref name="sloSecondsPerToken"/> even at batch 1.
    /// <paramref name="sloSecondsPerToken"/> null: no latency target (batch tier).
    /// </summary>
    public static ServingEstimate? Estimate(ServingLoad load, AcceleratorConfig accelerator, string precision, PerformanceConfig performance, double batchingEfficiency, double? sloSecondsPerToken) =>
        Estimate(load, accelerator, precision, performance, batchingEfficiency, new ServiceLevel(sloSecondsPerToken));

    /// <summary>
    /// The best serving setup meeting <paramref name="service"/>, over tensor-parallel groups of 1 to 8 (or the smallest
    /// larger group that fits), or only <paramref name="tensorParallel"/> accelerators when given; null when none fits or
    /// meets the targets even at batch 1.
    /// </summary>
    public static ServingEstimate? Estimate(ServingLoad load, AcceleratorConfig accelerator, string precision, PerformanceConfig performance, double batchingEfficiency,
        ServiceLevel service, int? tensorParallel = null)
    {
        var weightBytes = load.ParametersB * 1e9 * load.BytesPerParameter;
        var kvPerSequence = load.KvBytesPerToken * load.ContextTokens;
        var activeParameters = load.ActiveParametersB * 1e9;
        var computeEfficiency = Math.Min(1, performance.ComputeEfficiency * batchingEfficiency);
        var bandwidthEfficiency = Math.Min(1, performance.BandwidthEfficiency * batchingEfficiency);
        var inputTokens = load.RequestInputTokens;
        ServingEstimate? best = null;
        foreach (var g in tensorParallel is { } pinned ? [pinned] : GroupSizes)
        {
            // Tensor parallelism scales within a node (8 accelerators on NVLink or Infinity Fabric); larger groups are
            // only for models that fit no node, and then the smallest group that fits is taken.
            if (g > NodeSize && best is not null)
            {
                break;
            }
            var memory = g * accelerator.MemoryGb * 1e9 * performance.MemoryUtilisation;
            var memoryBatch = Math.Floor((memory - weightBytes) / kvPerSequence);
            if (memoryBatch < 1)
            {
                continue;
            }
            var maxBatch = (int)Math.Min(performance.MaxBatch, memoryBatch);
            var limit = memoryBatch <= performance.MaxBatch ? "memory" : "max_batch";
            var tp = TensorParallelEfficiency(g, performance.AllReduceCost);
            var software = accelerator.SoftwareEfficiency;
            var bandwidth = g * accelerator.BandwidthTbS * 1e12 * bandwidthEfficiency * tp * software;
            var flops = g * DenseTflops(accelerator, precision) * 1e12 * computeEfficiency * tp * software;
            var attentionFlops = g * DenseTflops(accelerator, load.AttentionPrecision ?? precision) * 1e12 * computeEfficiency * tp * software;
            // Seconds of compute per decoded token: the weights' 2·N_active FLOPs plus attention over its context.
            var computePerToken = 2 * activeParameters / flops + load.AttentionFlopsPerContextToken * load.ContextTokens / attentionFlops;
            double Memory(int b) => (WeightBytesRead(load, b) + b * kvPerSequence) / bandwidth;
            double Compute(int b) => b * computePerToken;
            double Step(int b) => Math.Max(Memory(b), Compute(b));
            // Prefill of the uncached input: 2·N_active per token, attention over a prefix growing to I (I²/2 pairs).
            var uncached = (1 - load.CacheHitRate) * inputTokens;
            var prefillPerRequest = load.DecodeOnly ? 0 : uncached * 2 * activeParameters / flops + load.AttentionFlopsPerContextToken * uncached * inputTokens / 2 / attentionFlops;
            // The largest batch whose step meets both targets; t(B) grows with B, so by bisection.
            bool Meets(int b) => (service.SecondsPerOutputToken is not { } tpot || Step(b) <= tpot)
                && (service.TimeToFirstTokenSeconds is not { } ttft || prefillPerRequest + Step(b) <= ttft);
            if (!Meets(1))
            {
                continue;
            }
            var batch = maxBatch;
            if (!Meets(maxBatch))
            {
                int low = 1, high = maxBatch;
                while (low < high)
                {
                    var mid = (low + high + 1) / 2;
                    if (Meets(mid)) { low = mid; } else { high = mid - 1; }
                }
                batch = low;
                limit = service.SecondsPerOutputToken is { } t && Step(batch + 1) > t ? "tpot" : "ttft";
            }
            var step = Step(batch);
            var decode = batch / step;
            var prefillPerOutput = load.DecodeOnly || inputTokens <= 0 ? 0 : prefillPerRequest * load.InputPerOutput / inputTokens;
            var secondsPerOutput = 1 / decode + prefillPerOutput;
            var perGpuHour = 3600 / secondsPerOutput / g;
            var bound = Memory(batch) >= Compute(batch) ? "memory" : "compute";
            if (best is null || perGpuHour > best.OutputTokensPerGpuHour)
            {
                best = new ServingEstimate(g, batch, decode, step, perGpuHour, bound, prefillPerRequest + step, limit);
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
