using System.Globalization;
using Marginal.Gateway.Configuration;

namespace Marginal.Gateway.Deferral;

/// <summary>Reads the <c>x-marginal-deadline</c> header.</summary>
public static class Deadlines
{
    /// <summary>The longest a job may wait: OpenAI's batch completion window is 24 hours, the rest is headroom for retries.</summary>
    public static readonly TimeSpan Longest = TimeSpan.FromDays(7);

    /// <summary>
    /// Parses a deadline: an ISO-8601 time with an offset (<c>2026-11-28T18:00:00Z</c>) or a duration from
    /// <paramref name="now"/> (<c>90s</c>, <c>30m</c>, <c>6h</c>, <c>1d</c>, ISO-8601 <c>PT6H</c>). False when it is
    /// neither, is not in the future, or is more than <see cref="Longest"/> away.
    /// </summary>
    public static bool TryParse(string text, DateTimeOffset now, out DateTimeOffset deadline)
    {
        deadline = default;
        var trimmed = text.Trim();
        if (Durations.TryParseWait(trimmed, out var wait))
        {
            deadline = now + wait;
        }
        else if (trimmed.Contains('T', StringComparison.Ordinal)
            && DateTimeOffset.TryParse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
        {
            deadline = at;
        }
        else
        {
            return false;
        }
        return deadline > now && deadline - now <= Longest;
    }
}
