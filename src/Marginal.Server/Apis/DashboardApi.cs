using System.Globalization;
using System.Text.Json;
using Marginal.Core.Ledger;
using Marginal.Economics.UnitEconomics;
using Marginal.Gateway.Model;
using Marginal.Gateway.Pricing;
using Marginal.Server.Dashboard;
using Marginal.Server.Hosting;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Marginal.Server.Apis;

/// <summary>
/// <c>/dashboard</c>: the unit-economics dashboard, behind the admin key (<c>server.admin_key_env</c>).
/// <list type="bullet">
/// <item><c>POST /dashboard</c> with the form field <c>key=ADMIN_KEY</c> (the sign-in form) → 303 to <c>/dashboard</c>, setting
/// an HttpOnly, SameSite=Strict cookie that holds an HMAC of the admin key (never the key). The key travels in the body,
/// never in a URL, so it stays out of access logs, the address bar and history.</item>
/// <item><c>GET /dashboard</c> with the cookie (or <c>Authorization: Bearer ADMIN_KEY</c>) → the page; without → 401 and a sign-in form.</item>
/// <item><c>GET /dashboard/data?since=&amp;until=&amp;by=</c> → the report as JSON; 401 in OpenAI error format without the key.</item>
/// </list>
/// Every answer carries a content security policy (scripts from this origin only, no framing) and no-store, beside the
/// headers <see cref="Hosting.SecurityHeaders"/> puts on every answer.
/// </summary>
public static class DashboardApi
{
    public const string CookieName = "marginal_dashboard";

    internal static IEndpointRouteBuilder MapDashboardApi(this IEndpointRouteBuilder app, AdminAccess adminAccess)
    {
        var access = new DashboardAccess(adminAccess);
        app.MapGet("/dashboard", (HttpContext http) => PageAsync(http, access));
        app.MapPost("/dashboard", (HttpContext http) => SignInAsync(http, access));
        app.MapGet("/dashboard/data", (HttpContext http, ILedgerStore ledger, GatewayModelSource models, TimeProvider time) => DataAsync(http, access, ledger, models, time));
        app.MapGet("/dashboard/chart.js", (HttpContext http) => AssetAsync(http, "text/javascript", DashboardPage.ChartScript));
        app.MapGet("/dashboard/dashboard.js", (HttpContext http) => AssetAsync(http, "text/javascript", DashboardPage.PageScript));
        app.MapGet("/dashboard/dashboard.css", (HttpContext http) => AssetAsync(http, "text/css", DashboardPage.PageStyle));
        return app;
    }

    private static void Secure(HttpResponse response)
    {
        response.Headers.ContentSecurityPolicy = DashboardPage.ContentSecurityPolicy;
        response.Headers.XFrameOptions = "DENY";
        response.Headers.CacheControl = "no-store";
    }

    private static async Task PageAsync(HttpContext http, DashboardAccess access)
    {
        Secure(http.Response);
        if (await access.Admin.RefuseIfThrottledAsync(http))
        {
            return;
        }
        await (access.Allows(http)
            ? Html(http, StatusCodes.Status200OK, DashboardPage.Served)
            : Html(http, StatusCodes.Status401Unauthorized, DashboardPage.Login));
    }

    private static async Task SignInAsync(HttpContext http, DashboardAccess access)
    {
        Secure(http.Response);
        if (await access.Admin.RefuseIfThrottledAsync(http))
        {
            return;
        }
        var key = http.Request.HasFormContentType ? (await http.Request.ReadFormAsync(http.RequestAborted))["key"].ToString() : "";
        if (!access.Admin.IsKey(key))
        {
            access.Admin.Failed(http);
            await Html(http, StatusCodes.Status401Unauthorized, DashboardPage.Login);
            return;
        }
        http.Response.Cookies.Append(CookieName, access.Admin.CookieValue!, new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = http.Request.IsHttps,
            Path = "/dashboard",
        });
        http.Response.StatusCode = StatusCodes.Status303SeeOther;
        http.Response.Headers.Location = "/dashboard";
    }

    private static Task Html(HttpContext http, int status, string html)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/html; charset=utf-8";
        return http.Response.WriteAsync(html, http.RequestAborted);
    }

    private static Task AssetAsync(HttpContext http, string type, string text)
    {
        Secure(http.Response);
        http.Response.ContentType = type + "; charset=utf-8";
        return http.Response.WriteAsync(text, http.RequestAborted);
    }

    private static async Task DataAsync(HttpContext http, DashboardAccess access, ILedgerStore ledger, GatewayModelSource models, TimeProvider time)
    {
        Secure(http.Response);
        if (await access.Admin.RefuseIfThrottledAsync(http))
        {
            return;
        }
        if (!access.Allows(http))
        {
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status401Unauthorized, access.Admin.Enabled
                ? "The dashboard needs the admin key: sign in at /dashboard, or send 'Bearer ADMIN_KEY'."
                : "The dashboard is disabled: set the environment variable named by server.admin_key_env (default MARGINAL_ADMIN_KEY) and restart.",
                "invalid_request_error", access.Admin.Enabled ? "invalid_admin_key" : "admin_disabled");
            return;
        }
        var query = http.Request.Query;
        DateTimeOffset? since = null, until = null;
        foreach (var (name, set) in new (string, Action<DateTimeOffset>)[] { ("since", t => since = t), ("until", t => until = t) })
        {
            if (query.TryGetValue(name, out var text) && text.ToString().Length > 0)
            {
                if (!DateTimeOffset.TryParse(text.ToString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
                {
                    await OpenAIErrors.WriteAsync(http, StatusCodes.Status400BadRequest, $"'{name}' must be an ISO-8601 time such as 2026-11-01T00:00:00Z.", "invalid_request_error", "invalid_value", name);
                    return;
                }
                set(at);
            }
        }
        var by = EconomicsGrouping.Model;
        if (query.TryGetValue("by", out var byText) && byText.ToString().Length > 0 && !Enum.TryParse(byText.ToString(), ignoreCase: true, out by))
        {
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status400BadRequest, "'by' must be one of: tenant, model, provider, capacity, route.", "invalid_request_error", "invalid_value", "by");
            return;
        }
        var report = await BuildAsync(ledger, models.Current.Config, since, until, by, time.GetUtcNow(), http.RequestAborted);
        http.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(http.Response.Body, report, EconomicsJson.Default.EconomicsReport, http.RequestAborted);
    }

    /// <summary>
    /// The report for [since, until) (defaults: the ledger's first hour, and <paramref name="now"/>), from the store's
    /// rollups when it keeps them, else from its records.
    /// </summary>
    public static async Task<EconomicsReport> BuildAsync(ILedgerStore ledger, Gateway.Configuration.MarginalConfig config, DateTimeOffset? since, DateTimeOffset? until,
        EconomicsGrouping by, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ledger);
        IReadOnlyList<UsageRollup> rollups = ledger is IUsageRollups kept
            ? await kept.ReadRollupsAsync(since, until, cancellationToken)
            : UsageRollup.From(await ledger.ReadAsync(since, until, cancellationToken).ToListAsync(cancellationToken));
        var from = since ?? (rollups.Count > 0 ? rollups.Min(r => r.Hour) : now);
        var to = until ?? now;
        var (pools, spillover) = EconomicsInputs.From(config, PriceBookLoader.LoadWithOverride(config.Pricing.Book));
        return EconomicsQueries.Build(rollups, from, to > from ? to : from, by, pools, spillover);
    }

    /// <summary>
    /// Who may see the dashboard: the admin key as a Bearer header, or the cookie set from it. A wrong key or cookie
    /// counts as a failed admin attempt; a request with neither (the sign-in page) does not.
    /// </summary>
    private sealed class DashboardAccess(AdminAccess admin)
    {
        public AdminAccess Admin { get; } = admin;

        public bool Allows(HttpContext http)
        {
            if (!Admin.Enabled)
            {
                return false;
            }
            bool allowed;
            if (AdminAccess.BearerOf(http.Request) is { } bearer)
            {
                allowed = Admin.IsKey(bearer);
            }
            else if (http.Request.Cookies.TryGetValue(CookieName, out var cookie))
            {
                allowed = Admin.CookieMatches(cookie);
            }
            else
            {
                return false;
            }
            if (!allowed)
            {
                Admin.Failed(http);
            }
            return allowed;
        }
    }
}
