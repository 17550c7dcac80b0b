using System.Globalization;
using System.Xml;

namespace Marginal.Gateway.Configuration;

/// <summary>
/// Waits as the <c>deferral:</c> section and the <c>x-marginal-deadline</c> header write them (ISO-8601 included, up to
/// a year); <see cref="ConfigLoader.TryParseDuration"/> reads the shorter timeouts of providers.
/// </summary>
public static class Durations
{
    /// <summary>Parses <c>200ms</c>, <c>90s</c>, <c>30m</c>, <c>6h</c>, <c>1d</c> or an ISO-8601 duration (<c>PT6H</c>); positive only.</summary>
    public static bool TryParseWait(string text, out TimeSpan duration)
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
