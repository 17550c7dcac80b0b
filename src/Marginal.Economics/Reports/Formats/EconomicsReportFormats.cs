using System.Globalization;
using System.Text;
using System.Text.Json;
using Marginal.Economics.UnitEconomics;

namespace Marginal.Economics.Reports.Formats;

/// <summary>
/// The economics report as CSV, JSON (the dashboard's data) and one self-contained HTML file (the dashboard with its
/// data inlined). The dashboard's script, style and chart library (Chart.js 4.6.1, MIT, vendored from npm with its
/// licence as Html/chart.js.LICENSE.md) are embedded in this assembly; the server serves the same files at /dashboard/….
/// The terminal table is the CLI's (it renders through the console library).
/// </summary>
public static class EconomicsReportFormats
{
    private static readonly Lazy<string> Chart = new(() => Resource("chart.umd.min.js"));
    private static readonly Lazy<string> Script = new(() => Resource("dashboard.js"));
    private static readonly Lazy<string> Style = new(() => Resource("dashboard.css"));

    public static string ChartScript => Chart.Value;
    public static string PageScript => Script.Value;
    public static string PageStyle => Style.Value;

    /// <summary>One line per group and the total last; empty means unknown (unpriced, no plan), never zero.</summary>
    public static string Csv(EconomicsReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var s = new StringBuilder();
        s.Append(report.By.ToString().ToLowerInvariant())
            .Append(",requests,errors,input_tokens,output_tokens,cost_usd,marginal_cost_usd,revenue_usd,unpriced_requests,unplanned_requests,cost_per_million_tokens_usd,gross_margin,cost_share_of_revenue,fixed_cost_usd,variable_cost_usd,cache_hit_rate\n");
        foreach (var x in report.Rows.Append(report.Total))
        {
            s.AppendJoin(',', Core.Formats.Csv.Text(x.Group), N(x.Requests), N(x.Errors), N(x.InputTokens), N(x.OutputTokens), D(x.CostUsd), D(x.MarginalCostUsd), D(x.RevenueUsd),
                N(x.UnpricedRequests), N(x.UnplannedRequests), D(x.CostPerMillionTokensUsd), D(x.GrossMargin), D(x.CostShareOfRevenue), D(x.FixedCostUsd), D(x.VariableCostUsd),
                D(x.CacheHitRate)).Append('\n');
        }
        return s.ToString();
    }

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string D(decimal? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "";

    /// <summary>The report as one line of JSON (source-generated, <see cref="EconomicsJson"/>), without a trailing newline.</summary>
    public static string Json(EconomicsReport report) => JsonSerializer.Serialize(report, EconomicsJson.Default.EconomicsReport);

    /// <summary>The report as JSON, straight to <paramref name="stream"/> (the dashboard's /dashboard/data).</summary>
    public static Task WriteJsonAsync(Stream stream, EconomicsReport report, CancellationToken cancellationToken) =>
        JsonSerializer.SerializeAsync(stream, report, EconomicsJson.Default.EconomicsReport, cancellationToken);

    /// <summary>One self-contained HTML file: style, Chart.js, the report as JSON and the script, inlined.</summary>
    public static string Html(EconomicsReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        // The serializer escapes '<', '>' and '&' (\u003C…), so the JSON cannot close the script element.
        var html = new StringBuilder();
        html.Append("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Marginal · unit economics</title>\n<style>")
            .Append(PageStyle).Append("</style>\n<script>").Append(ChartScript).Append("</script></head>\n<body><div id=\"dashboard\"></div>\n")
            .Append("<script type=\"application/json\" id=\"economics-data\">").Append(Json(report)).Append("</script>\n<script>")
            .Append(PageScript).Append("</script></body></html>\n");
        return html.ToString();
    }

    private static string Resource(string name)
    {
        using var stream = typeof(EconomicsReportFormats).Assembly.GetManifestResourceStream($"Marginal.Economics.Reports.Formats.Html.{name}")
            ?? throw new InvalidOperationException($"missing embedded resource {name}");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
