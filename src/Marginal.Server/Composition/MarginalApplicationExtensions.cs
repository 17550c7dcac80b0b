using Marginal.Gateway.Configuration;
using Marginal.Server.Apis;
using Marginal.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Marginal.Server.Composition;

/// <summary>The composition root's request steps: the guards every request passes, then the APIs, in that order.</summary>
public static class MarginalApplicationExtensions
{
    /// <summary>
    /// Errors, security headers and body limits; the metrics' admin key (<c>server.metrics_auth: admin</c>); virtual keys
    /// (<c>server.auth: keys</c>); then the large-body budget.
    /// </summary>
    public static WebApplication UseMarginalRequestGuards(this WebApplication app, MarginalConfig config)
    {
        app.UseMiddleware<ErrorGuard>();
        app.UseMiddleware<SecurityHeaders>();
        app.UseMiddleware<RequestLimits>(config.Server.MaxRequestBodyBytes);
        if (config.Server.MetricsAuth == "admin")
        {
            // Metrics name models, providers and tenants' traffic; behind the admin key when the listener is not private.
            var adminAccess = app.Services.GetRequiredService<AdminAccess>();
            app.Use(async (http, next) =>
            {
                if (!http.Request.Path.StartsWithSegments("/metrics", StringComparison.Ordinal) || await adminAccess.AdmitBearerAsync(http, "/metrics endpoint"))
                {
                    await next(http);
                }
            });
        }
        if (app.Services.GetService<KeyAuthentication>() is { } authentication)
        {
            app.Use((http, next) => authentication.InvokeAsync(http, next));
        }
        // Large bodies hold their bytes of the budget until answered; after authentication, so a refused client never waits.
        var bodyBudget = app.Services.GetRequiredService<BodyBudget>();
        app.Use((http, next) => bodyBudget.InvokeAsync(http, next, config.Server.MaxRequestBodyBytes));
        return app;
    }

    /// <summary>
    /// The APIs: chat completions, responses and messages; with a store the admin keys, feedback, dashboard and (<c>deferral.enabled</c>) jobs
    /// APIs; embeddings, models, health and <c>/metrics</c>.
    /// </summary>
    public static WebApplication MapMarginalApis(this WebApplication app, MarginalConfig config)
    {
        app.MapChatCompletionsApi();
        app.MapResponsesApi();
        app.MapMessagesApi();
        if (MarginalServiceCollectionExtensions.HasStore(config))
        {
            var adminAccess = app.Services.GetRequiredService<AdminAccess>();
            app.MapAdminKeysApi(adminAccess);
            app.MapFeedbackApi();
            app.MapDashboardApi(adminAccess);
            if (config.Deferral.Enabled)
            {
                app.MapJobsApi();
            }
        }
        app.MapEmbeddingsApi();
        app.MapModelsApi();
        app.MapHealthApi();
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }
}
