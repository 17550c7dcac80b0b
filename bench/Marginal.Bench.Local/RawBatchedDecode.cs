using System.Diagnostics;
using LLama;
using LLama.Batched;
using LLama.Common;
using LLama.Native;
using LLama.Sampling;

namespace Marginal.Bench.Local;

/// <summary>
/// The baseline: LLamaSharp's BatchedExecutor driven directly, with the context the scheduler would build
/// (same sequences, per-sequence context, threads). All sequences start together, decode greedily and stop at
/// the same token count; there is no queue, no channel, no chat client.
/// </summary>
public sealed class RawBatchedDecode(LLamaWeights weights, int maxBatch, int sequenceContext, int threads) : IDisposable
{
    private readonly BatchedExecutor _executor = new(weights, new ModelParams("unused")
    {
        ContextSize = (uint)(maxBatch * sequenceContext),
        SeqMax = (uint)maxBatch,
        KVUnified = false,
        Threads = threads,
        BatchThreads = threads,
    });

    /// <summary>Runs <paramref name="prompts"/>.Count sequences of <paramref name="tokens"/> tokens each; returns the wall time.</summary>
    public async Task<TimeSpan> RunAsync(IReadOnlyList<LLamaToken[]> prompts, int tokens)
    {
        var clock = Stopwatch.StartNew();
        var conversations = prompts.Select(p =>
        {
            var conversation = _executor.Create();
            conversation.Prompt(p);
            return (Conversation: conversation, Sampler: new GreedySamplingPipeline(), Generated: 0);
        }).ToArray();
        var live = conversations.Length;
        while (live > 0)
        {
            var result = await _executor.Infer();
            if (result != DecodeResult.Ok)
            {
                throw new InvalidOperationException($"decode failed: {result}");
            }
            for (var i = 0; i < conversations.Length; i++)
            {
                ref var c = ref conversations[i];
                if (c.Generated >= tokens || !c.Conversation.RequiresSampling)
                {
                    continue;
                }
                var token = c.Conversation.Sample(c.Sampler);
                c.Generated++;
                if (c.Generated >= tokens)
                {
                    live--;
                    c.Conversation.Dispose();
                    c.Sampler.Dispose();
                    continue;
                }
                c.Conversation.Prompt(token);
            }
        }
        return clock.Elapsed;
    }

    public void Dispose() => _executor.Dispose();
}
