using System.Globalization;
using System.Xml;

namespace Marginal.Gateway.Deferral;

/// <summary>Reads the <c>x-marginal-deadline</c> header and the durations of the <c>deferral:</c> section.</summary>
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
        if (TryParseDuration(trimmed, out var wait))
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

    /// <summary>Parses <c>200ms</c>, <c>90s</c>, <c>30m</c>, <c>6h</c>, <c>1d</c> or an ISO-8601 duration (<c>PT6H</c>); positive only.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        var s = text.Trim();
        if (s.StartsWith('P'))
        {
            try
            {
                duration = XmlConvert.ToTimeSpan(s);
            }
            catch (FormatException)
            {
                return false;
            }
            return duration > TimeSpan.Zero;
        }
        var (unit, factor) = s.EndsWith("ms", StringComparison.Ordinal) ? (2, 0.001)
            : s.EndsWith('s') ? (1, 1)
            : s.EndsWith('m') ? (1, 60)
            : s.EndsWith('h') ? (1, 3600)
            : s.EndsWith('d') ? (1, 86400)
            : (0, 0.0);
        if (unit == 0 || !double.TryParse(s[..^unit], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value <= 0 || value * factor > 366 * 86400)
        {
            return false;
        }
        duration = TimeSpan.FromSeconds(value * factor);
        return true;
    }
}
