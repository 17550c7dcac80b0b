using Marginal.Economics.Reports.Formats;

namespace Marginal.Server.Dashboard;

/// <summary>
/// The served dashboard's pages and policy. Its script, style and chart library are the economics report's HTML format
/// (<see cref="EconomicsReportFormats"/>): the same script renders the served page (which fetches /dashboard/data) and
/// the self-contained report file (with everything inlined, so it opens without a network).
/// </summary>
public static class DashboardPage
{
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    public static string ChartScript => EconomicsReportFormats.ChartScript;
    public static string PageScript => EconomicsReportFormats.PageScript;
    public static string PageStyle => EconomicsReportFormats.PageStyle;

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
}
