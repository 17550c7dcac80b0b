namespace Marginal.Local.Scheduling;

/// <summary>How a sequence ended.</summary>
public enum SequenceEnd
{
    /// <summary>The model sampled an end-of-generation token.</summary>
    Stop,
    /// <summary>The sequence reached its token limit.</summary>
    Length,
}

/// <summary>
/// One item from a running sequence: decoded text (possibly several tokens' worth, or empty while a multi-byte
/// character is incomplete), and, on the last item only, how it ended with its exact token counts, its share of
/// the scheduler's busy time (each decode step's time divided equally among the sequences in that step) and
/// whether it had to queue for a slot.
/// </summary>
public readonly record struct SequenceUpdate(string Text, SequenceEnd? End = null, int PromptTokens = 0, int OutputTokens = 0,
    TimeSpan BusyShare = default, bool Queued = false);

/// <summary>
/// Sampling for one sequence. Temperature 0 is greedy decoding; a seed makes sampling repeatable. A GBNF grammar
/// (start rule <c>root</c>, already checked to parse: see <c>GrammarCheck</c>) restricts every token to those that keep
/// the output a prefix of a sentence of the grammar, and allows the end of generation only once the sentence is complete.
/// </summary>
public readonly record struct SamplingSettings(float Temperature, float TopP, uint? Seed, string? Grammar = null)
{
    public static readonly SamplingSettings Greedy = new(0f, 1f, null);
}
