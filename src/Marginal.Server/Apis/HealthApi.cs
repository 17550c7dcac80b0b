using Marginal.Gateway.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Marginal.Server.Apis;

/// <summary>
/// <c>/healthz</c>: the process serves HTTP. <c>/readyz</c>: a configuration is loaded and it has at least one model,
/// so a load balancer may send traffic here.
/// </summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Text("""{"status":"ok"}""", "application/json"));
        app.MapGet("/readyz", (GatewayModelSource models) => models.Current.Models.Count > 0
            ? Results.Text($$"""{"status":"ready","models":{{models.Current.Models.Count}}}""", "application/json")
            : Results.Text("""{"status":"not_ready","reason":"no models are configured"}""", "application/json", statusCode: StatusCodes.Status503ServiceUnavailable));
        return app;
    }
}
