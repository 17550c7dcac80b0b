using Marginal.Core.Formats;

namespace Marginal.Core.Tests.Formats;

public sealed class CsvTests
{
    [Theory]
    [InlineData("=1+1", "'=1+1")]
    [InlineData("+1", "'+1")]
    [InlineData("-0.5", "'-0.5")]
    [InlineData("@SUM(A1)", "'@SUM(A1)")]
    [InlineData("\tx", "'\tx")]
    [InlineData("=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"")]
    [InlineData("=a,b", "\"'=a,b\"")]
    public void Text_StartsLikeAFormula_GetsALeadingQuote(string value, string expected) => Assert.Equal(expected, Csv.Text(value));

    [Theory]
    [InlineData("gpt-4o-mini", "gpt-4o-mini")]
    [InlineData("a,b", "\"a,b\"")]
    [InlineData("say \"hi\"", "\"say \"\"hi\"\"\"")]
    [InlineData("line\nbreak", "\"line\nbreak\"")]
    [InlineData("", "")]
    [InlineData(null, "")]
    public void Text_PlainText_IsQuotedOnlyWhereCsvNeedsIt(string? value, string expected) => Assert.Equal(expected, Csv.Text(value));
}
