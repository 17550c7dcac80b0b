using System.Text;
using System.Text.Json;
using Marginal.Economics.UnitEconomics;

namespace Marginal.Server.Dashboard;

/// <summary>
/// The dashboard's HTML, script, style and chart library (Chart.js 4.6.1, MIT, vendored from npm with its licence as
/// chart.js.LICENSE.md), all embedded in this assembly. The same script renders the served page (which fetches
/// /dashboard/data) and the self-contained report file (with everything inlined, so it opens without a network).
/// </summary>
public static class DashboardPage
{
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    private static readonly Lazy<string> Chart = new(() => Resource("chart.umd.min.js"));
    private static readonly Lazy<string> Script = new(() => Resource("dashboard.js"));
    private static readonly Lazy<string> Style = new(() => Resource("dashboard.css"));

    public static string ChartScript => Chart.Value;
    public static string PageScript => Script.Value;
    public static string PageStyle => Style.Value;

    /// <summary>The served page: everything by reference to /dashboard/…, so the content security policy needs no inline script.</summary>
    public const string Served = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Marginal · unit economics</title><link rel="icon" href="data:,">
        <link rel="stylesheet" href="/dashboard/dashboard.css"><script src="/dashboard/chart.js"></script></head>
        <body><div id="dashboard"></div><script src="/dashboard/dashboard.js"></script></body></html>
        """;

    /// <summary>The login form shown without the admin key: it posts the key once, in the body.</summary>
    public const string Login = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Marginal · sign in</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/dashboard/dashboard.css"></head>
        <body><h1>Unit economics</h1><p>The dashboard needs the admin key (the environment variable named by server.admin_key_env).</p>
        <form method="post" action="/dashboard"><label>Admin key <input type="password" name="key" autocomplete="off"></label> <button type="submit">Open</button></form></body></html>
        """;

    /// <summary>One self-contained HTML file: style, Chart.js, the report as JSON and the script, inlined.</summary>
    public static string SelfContained(EconomicsReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        // The serializer escapes '<', '>' and '&' (\u003C…), so the JSON cannot close the script element.
        var json = JsonSerializer.Serialize(report, EconomicsJson.Default.EconomicsReport);
        var html = new StringBuilder();
        html.Append("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Marginal · unit economics</title>\n<style>")
            .Append(PageStyle).Append("</style>\n<script>").Append(ChartScript).Append("</script></head>\n<body><div id=\"dashboard\"></div>\n")
            .Append("<script type=\"application/json\" id=\"economics-data\">").Append(json).Append("</script>\n<script>")
            .Append(PageScript).Append("</script></body></html>\n");
        return html.ToString();
    }

    private static string Resource(string name)
    {
        using var stream = typeof(DashboardPage).Assembly.GetManifestResourceStream($"Marginal.Server.Dashboard.{name}")
            ?? throw new InvalidOperationException($"missing embedded resource {name}");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
