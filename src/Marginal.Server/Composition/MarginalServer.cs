using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Marginal.Server.Composition;

/// <summary>
/// Builds the HTTP host: the same for <c>marginal serve</c>, tests and benchmarks. The composition root, a chain of
/// small steps in the order docs/architecture.md gives ("Composition root"): storage, cluster, billing, gateway and
/// hosting services, then the request guards and the APIs. The one namespace that sees Hosting, Apis and Cluster
/// together, so that none of them needs another's.
/// </summary>
public static class MarginalServer
{
    /// <summary>
    /// Creates the web application for <paramref name="config"/>. <paramref name="configPath"/>, when given, is
    /// watched and reloaded on change. <paramref name="urls"/> overrides <c>server.urls</c>. <paramref name="logging"/>
    /// adds to the logging setup (tests record what the server logs). A setting that cannot work (the admin key, the
    /// certificate, the plans file) is a <see cref="ConfigException"/> here; a store or Redis that cannot be reached
    /// is one when the application starts.
    /// </summary>
    public static WebApplication Create(MarginalConfig config, string? configPath = null, string? urls = null, TimeProvider? time = null,
        LogLevel minimumLogLevel = LogLevel.Warning, Action<ILoggingBuilder>? logging = null)
    {
        time ??= TimeProvider.System;
        // Marginal reads marginal.yaml, not appsettings.json, so the host must not watch its content root for changes:
        // that watcher covers every file below the working directory, where ./marginal.db lives by default, and woke
        // up on each ledger commit (6.7% of a node's CPU at one connection; docs/benchmarks.md, section 3).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(minimumLogLevel);
        // ASP.NET Core logs two lines per request at Information; on a gateway that is most of the request's CPU.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        // While this category is enabled at any level, hosting starts an Activity per request for its log scopes, and
        // HttpClient then starts a child and sends `traceparent` upstream: 3% of a request's CPU (docs/benchmarks.md,
        // section 3). It only logs request start and finish; traces, when configured (server.otlp_endpoint), still get
        // their activities from their own listener.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        logging?.Invoke(builder.Logging);
        builder.WebHost.UseUrls(urls ?? config.Server.Urls);
        var certificate = ServerCertificate.Load(config.Server.Tls, urls ?? config.Server.Urls);
        if (certificate is not null)
        {
            // The slim builder leaves HTTPS out unless asked.
            builder.WebHost.UseKestrelHttpsConfiguration();
        }
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = config.Server.MaxRequestBodyBytes;
            if (certificate is not null)
            {
                kestrel.ConfigureHttpsDefaults(https => https.ServerCertificate = certificate);
            }
        });

        builder.Services
            .AddMarginalStartup(config, time)
            .AddMarginalStorage(config)
            .AddMarginalHosting(config, configPath, time)
            .AddMarginalCluster(config)
            .AddMarginalBilling(config)
            .AddMarginalGateway(config, time)
            .AddMarginalTelemetry(config.Server);

        var app = builder.Build();
        app.UseMarginalRequestGuards(config);
        app.MapMarginalApis(config);
        return app;
    }
}
