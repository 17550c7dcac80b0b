using System.Globalization;

namespace Marginal.Planner.Reports;

/// <summary>How reports print money and shares; figures are rounded only here, never in the arithmetic.</summary>
public static class ReportFormat
{
    public static string Usd(decimal value, int decimals = 0)
    {
        var fraction = decimals == 0 ? "" : "." + new string('0', decimals);
        return value.ToString($"$#,0{fraction};-$#,0{fraction}", CultureInfo.InvariantCulture);
    }

    public static string Pct(double? value) => value is { } v ? v.ToString("0.0%", CultureInfo.InvariantCulture) : "-";

    /// <summary>An optimality gap: two more decimals than a share, since a plan proven optimal has a gap of a millionth.</summary>
    public static string Gap(double? value) => value is { } v ? v.ToString("0.000%", CultureInfo.InvariantCulture) : "-";
}
