namespace Marginal.Core.Formats;

/// <summary>
/// CSV cells for every CSV Marginal writes (reports, economics reports, invoices). A text cell that a spreadsheet would
/// read as a formula (it starts with <c>=</c>, <c>+</c>, <c>-</c>, <c>@</c>, a tab or a carriage return) gets a leading
/// single quote, OWASP's rule against CSV injection, and a cell holding a comma, quote or line break is quoted (RFC 4180).
/// Numeric cells are not text: the writer formats them from numbers (invariant culture), so a negative amount such as
/// <c>-0.5</c> stays a number and is written as it is; only client- or operator-supplied text passes through
/// <see cref="Text"/>.
/// </summary>
public static class Csv
{
    /// <summary><paramref name="value"/> as a safe CSV cell.</summary>
    public static string Text(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return "";
        }
        if (value[0] is '=' or '+' or '-' or '@' or '\t' or '\r')
        {
            value = "'" + value;
        }
        return value.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? $"\"{value.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : value;
    }
}
