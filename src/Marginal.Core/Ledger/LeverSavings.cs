using System.Globalization;
using System.Text;

namespace Marginal.Core.Ledger;

/// <summary>
/// Reads and writes <see cref="UsageRecord.Levers"/>: comma-separated <c>lever=usd</c> pairs, the amount an invariant
/// decimal. Lever names are lower-case words: <c>cache</c>, <c>routing</c>, <c>deferral</c>, <c>owned</c>,
/// <c>quantization</c>, <c>prefix</c>.
/// </summary>
public static class LeverSavings
{
    /// <summary>The pairs of <paramref name="levers"/>; a name without <c>=</c> saved nothing that was counted (0).</summary>
    public static IEnumerable<(string Lever, decimal SavingsUsd)> Parse(string levers)
    {
        if (string.IsNullOrEmpty(levers))
        {
            yield break;
        }
        foreach (var part in levers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            yield return eq < 0
                ? (part, 0m)
                : (part[..eq], decimal.Parse(part[(eq + 1)..], NumberStyles.Number, CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The <see cref="UsageRecord.Levers"/> text for <paramref name="savings"/>, in their order.</summary>
    public static string Format(IEnumerable<KeyValuePair<string, decimal>> savings)
    {
        var text = new StringBuilder();
        foreach (var (lever, usd) in savings)
        {
            if (text.Length > 0)
            {
                text.Append(',');
            }
            text.Append(lever).Append('=').Append(usd.ToString(CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }
}
