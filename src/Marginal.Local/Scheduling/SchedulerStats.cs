namespace Marginal.Local.Scheduling;

/// <summary>
/// A snapshot of one scheduler since it started: the figures an owned pool needs for utilisation and costing.
/// Busy time is wall time spent inside decode steps; a step decodes every running sequence's next token (and any
/// prompt tokens of newly admitted ones) together.
/// </summary>
/// <param name="QueueDepth">Requests waiting for a slot now.</param>
/// <param name="ActiveSequences">Sequences in the running batch now.</param>
/// <param name="MaxBatch">Slots in the running batch.</param>
/// <param name="Uptime">Time since the scheduler started.</param>
/// <param name="BusyTime">Time spent decoding.</param>
/// <param name="Steps">Decode steps run.</param>
/// <param name="SequenceSteps">Sum over steps of the sequences in each step's batch.</param>
/// <param name="PromptTokens">Prompt tokens of admitted sequences.</param>
/// <param name="GeneratedTokens">Tokens sampled and sent to clients.</param>
/// <param name="Completed">Sequences that ended by a stop token or their token limit.</param>
/// <param name="Cancelled">Sequences whose client went away, queued or running.</param>
/// <param name="Rejected">Requests refused because the queue was full.</param>
public sealed record SchedulerStats(
    int QueueDepth,
    int ActiveSequences,
    int MaxBatch,
    TimeSpan Uptime,
    TimeSpan BusyTime,
    long Steps,
    long SequenceSteps,
    long PromptTokens,
    long GeneratedTokens,
    long Completed,
    long Cancelled,
    long Rejected)
{
    /// <summary>BusyTime / Uptime: the share of time the model was decoding.</summary>
    public double BusyFraction => Uptime > TimeSpan.Zero ? BusyTime / Uptime : 0;

    /// <summary>Mean sequences per step / MaxBatch: how full the batch was while busy.</summary>
    public double MeanBatchOccupancy => Steps > 0 ? (double)SequenceSteps / Steps / MaxBatch : 0;

    /// <summary>Generated tokens per second of uptime.</summary>
    public double TokensPerSecond => Uptime > TimeSpan.Zero ? GeneratedTokens / Uptime.TotalSeconds : 0;

    /// <summary>Generated tokens per second of busy time: the decode rate while working.</summary>
    public double BusyTokensPerSecond => BusyTime > TimeSpan.Zero ? GeneratedTokens / BusyTime.TotalSeconds : 0;
}
