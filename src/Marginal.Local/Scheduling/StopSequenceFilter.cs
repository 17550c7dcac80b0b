namespace Marginal.Local.Scheduling;

/// <summary>
/// Applies OpenAI's <c>stop</c> to decoded text as it streams: text is passed on as soon as it cannot be the start
/// of a stop sequence; the text from the first complete stop sequence on is never passed on, and generation ends
/// there. Only the tail that could still turn into a stop sequence is held back (at most the longest sequence − 1
/// characters), so streaming stays immediate. One instance per sequence; not thread-safe.
/// </summary>
public sealed class StopSequenceFilter(IReadOnlyList<string> stops)
{
    private string _held = "";

    /// <summary>True once a stop sequence was seen; later text is ignored.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Takes newly decoded <paramref name="text"/> and returns what may be sent now.</summary>
    public string Push(string text)
    {
        if (Stopped || text.Length == 0)
        {
            return "";
        }
        var buffer = _held + text;
        var at = -1;
        foreach (var stop in stops)
        {
            var found = buffer.IndexOf(stop, StringComparison.Ordinal);
            if (found >= 0 && (at < 0 || found < at))
            {
                at = found;
            }
        }
        if (at >= 0)
        {
            Stopped = true;
            _held = "";
            return buffer[..at];
        }
        var keep = HeldTail(buffer);
        _held = buffer[^keep..];
        return buffer[..^keep];
    }

    /// <summary>At the end of generation: what was held back, since no stop sequence completed it.</summary>
    public string Flush()
    {
        var rest = _held;
        _held = "";
        return Stopped ? "" : rest;
    }

    // The longest suffix of buffer that is a proper prefix of some stop sequence.
    private int HeldTail(string buffer)
    {
        var longest = 0;
        foreach (var stop in stops)
        {
            for (var length = Math.Min(stop.Length - 1, buffer.Length); length > longest; length--)
            {
                if (buffer.AsSpan(buffer.Length - length).SequenceEqual(stop.AsSpan(0, length)))
                {
                    longest = length;
                    break;
                }
            }
        }
        return longest;
    }
}
