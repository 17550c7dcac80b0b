using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Marginal.Server.Hosting;

/// <summary>
/// Headers every answer carries: no MIME sniffing, no referrer, and over HTTPS a year of HSTS. Pages add their own
/// content security policy and framing rules (the dashboard does).
/// </summary>
internal sealed class SecurityHeaders(RequestDelegate next)
{
    private static readonly StringValues NoSniff = "nosniff";
    private static readonly StringValues NoReferrer = "no-referrer";
    private static readonly StringValues OneYear = "max-age=31536000";

    public Task InvokeAsync(HttpContext http)
    {
        var headers = http.Response.Headers;
        headers.XContentTypeOptions = NoSniff;
        headers["Referrer-Policy"] = NoReferrer;
        if (http.Request.IsHttps)
        {
            headers.StrictTransportSecurity = OneYear;
        }
        return next(http);
    }
}
