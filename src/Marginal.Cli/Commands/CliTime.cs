using System.Globalization;
using Marginal.Gateway.Configuration;

namespace Marginal.Cli.Commands;

/// <summary>Times given on the command line: an ISO-8601 date or time (UTC unless it says otherwise), or an age such as <c>24h</c>.</summary>
internal static class CliTime
{
    public const string Allowed = "an ISO-8601 date or time such as 2026-11-27 or 2026-11-27T10:00Z, or an age such as 30m, 24h, 7d";

    /// <summary>A time; an age counts back from <paramref name="now"/>.</summary>
    public static bool TryParse(string text, DateTimeOffset now, out DateTimeOffset time)
    {
        if (TryParseAge(text, out var age))
        {
            time = now - age;
            return true;
        }
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out time);
    }

    /// <summary>The value of a time option such as <c>--since</c>: null when not given; a bad one is a <see cref="ConfigException"/> naming the command and option.</summary>
    public static DateTimeOffset? Option(string command, string name, string? text, DateTimeOffset now) =>
        text is null ? null
        : TryParse(text, now, out var time) ? time
        : throw new ConfigException($"marginal {command}: {name}: '{text}' is not a time (allowed: {Allowed})");

    /// <summary>A span written as a number and a unit: <c>m</c> minutes, <c>h</c> hours, <c>d</c> days.</summary>
    public static bool TryParseAge(string text, out TimeSpan age)
    {
        age = default;
        if (text.Length < 2 || !long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            return false;
        }
        TimeSpan? span = text[^1] switch
        {
            'm' => TimeSpan.FromMinutes(amount),
            'h' => TimeSpan.FromHours(amount),
            'd' => TimeSpan.FromDays(amount),
            _ => null,
        };
        age = span ?? default;
        return span is not null;
    }
}
