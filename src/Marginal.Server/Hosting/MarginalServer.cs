using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pipeline;
using Marginal.Server.Apis;
using Marginal.Server.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Marginal.Server.Hosting;

/// <summary>Builds the HTTP host: the same for <c>marginal serve</c>, tests and benchmarks.</summary>
public static class MarginalServer
{
    /// <summary>
    /// Creates the web application for <paramref name="config"/>. <paramref name="configPath"/>, when given, is
    /// watched and reloaded on change. <paramref name="urls"/> overrides <c>server.urls</c>. <paramref name="logging"/>
    /// adds to the logging setup (tests record what the server logs).
    /// </summary>
    public static WebApplication Create(MarginalConfig config, string? configPath = null, string? urls = null, TimeProvider? time = null,
        LogLevel minimumLogLevel = LogLevel.Warning, Action<ILoggingBuilder>? logging = null)
    {
        time ??= TimeProvider.System;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(minimumLogLevel);
        // ASP.NET Core logs two lines per request at Information; on a gateway that is most of the request's CPU.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        logging?.Invoke(builder.Logging);
        builder.WebHost.UseUrls(urls ?? config.Server.Urls);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = config.Server.MaxRequestBodyBytes;
        });

        var models = new GatewayModelSource(GatewayModel.Build(config, time));
        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton(models);
        builder.Services.AddSingleton<GatewayMetrics>();
        builder.Services.AddSingleton<IChatClient>(sp => GatewayPipeline.Build(models, time, sp.GetRequiredService<ILoggerFactory>()));
        if (configPath is not null)
        {
            builder.Services.AddHostedService(sp => new ConfigWatcher(configPath, models, time, sp.GetRequiredService<ILogger<ConfigWatcher>>()));
        }

        var telemetry = builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddMeter(GatewayMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddPrometheusExporter());
        if (config.Server.OtlpEndpoint is { } otlp)
        {
            telemetry.WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddOtlpExporter(o => o.Endpoint = new Uri(otlp)));
        }

        var app = builder.Build();
        app.UseMiddleware<ErrorGuard>();
        app.UseMiddleware<RequestLimits>(config.Server.MaxRequestBodyBytes);
        if (config.Server.ApiKeyEnv is { } keyEnv)
        {
            var key = Environment.GetEnvironmentVariable(keyEnv);
            if (string.IsNullOrEmpty(key))
            {
                throw new ConfigException($"server.api_key_env: the environment variable {keyEnv} is not set");
            }
            app.UseMiddleware<ApiKeyCheck>(key);
        }
        app.MapChatCompletionsApi();
        app.MapEmbeddingsApi();
        app.MapModelsApi();
        app.MapHealthApi();
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }
}
