using Marginal.Core.Budgets;
using Marginal.Core.Deferral;
using Marginal.Core.Ledger;
using Marginal.Gateway.Admission;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Capacity;
using Marginal.Gateway.Deferral;
using Marginal.Core.Tenancy;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
using Marginal.Storage;
using Marginal.Storage.Postgres;
using Marginal.Storage.Spool;
using Marginal.Storage.Sqlite;
using Microsoft.Data.Sqlite;
using Marginal.Gateway.Pipeline;
using Marginal.Gateway.Pricing;
using Marginal.Gateway.Routing;
using Marginal.Server.Apis;
using Marginal.Server.Cluster;
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
public static partial class MarginalServer
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
        var adminAccess = new AdminAccess(AdminAccess.ReadKey(config.Server), new AdminThrottle(time));
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

        var models = new GatewayModelSource(GatewayModel.Build(config, time));
        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton(models);
        builder.Services.AddSingleton<GatewayMetrics>();
        builder.Services.AddSingleton(new BodyBudget(config.Server.BodyBytesInFlight, time));
        // Cluster mode: counters, exact cache and config changes shared through Redis (docs/operations.md).
        var cluster = config.Redis is { } redisConfig ? ClusterRedis.Connect(redisConfig) : null;
        if (cluster is not null)
        {
            builder.Services.AddSingleton(_ => cluster);
        }
        var keysOn = config.Server.Auth == "keys";
        var store = keysOn || config.Storage.RecordUsage ? OpenStore(config.Storage) : null;
        LedgerWriter? ledger = null;
        if (store is not null)
        {
            // Registered through factories so the container disposes them at shutdown: the writer first (it drains
            // its queue into the store), then the store.
            builder.Services.AddSingleton(_ => store);
            builder.Services.AddSingleton<IKeyStore>(_ => store);
            builder.Services.AddSingleton<ILedgerStore>(_ => store);
            if (config.Storage.RecordUsage)
            {
                ledger = new LedgerWriter(store, maxUnrecorded: config.Storage.Acknowledge == "queued" ? config.Storage.MaxUnrecorded : 0);
                builder.Services.AddSingleton(_ => ledger);
            }
        }
        // One memory for routing decisions and POST /v1/feedback, so feedback moves later decisions.
        var routeFeedback = new RouteFeedback(shared: cluster?.RoutePending);
        if (store is IRouteExampleStore examples)
        {
            // Labels given before a restart: stored embeddings joined to their feedback rows.
            var stored = examples.ReadRouteExamplesAsync().GetAwaiter().GetResult();
            if (stored.Count > 0)
            {
                routeFeedback.Restore(stored, store.ReadFeedbackAsync().ToBlockingEnumerable());
            }
        }
        builder.Services.AddSingleton(routeFeedback);
        var (accounts, admission) = Billing(config, models, store, time, cluster);
        if (accounts is not null)
        {
            builder.Services.AddSingleton(accounts);
        }
        if (admission is not null)
        {
            builder.Services.AddSingleton(admission);
        }
        // One set of upstream cool-downs for chat and embeddings: a Retry-After told to one holds for the other.
        var cooldowns = new UpstreamCooldowns(time);
        builder.Services.AddSingleton(cooldowns);
        builder.Services.AddSingleton<IChatClient>(sp => GatewayPipeline.Build(models, time, ledger, sp.GetRequiredService<ILoggerFactory>(), routeFeedback, accounts, cluster?.Cache, cluster?.Cache,
            sp.GetService<ClusterSemanticCache>(), admission, cooldowns));
        builder.Services.AddSingleton(_ => GatewayPipeline.BuildEmbeddings(models, time, cooldowns, ledger, accounts, admission));
        if (store is IJobStore jobStore && config.Deferral.Enabled)
        {
            builder.Services.AddSingleton(_ => jobStore);
            builder.Services.AddSingleton(sp => new DeferralQueue(jobStore, models, ledger, time, sp.GetRequiredService<IChatClient>(), sp.GetRequiredService<ILogger<DeferralQueue>>(), accounts));
            builder.Services.AddHostedService(sp => new DeferralService(sp.GetRequiredService<DeferralQueue>(), config.Deferral.FlushEvery, time, sp.GetRequiredService<ILogger<DeferralService>>()));
        }
        if (keysOn)
        {
            builder.Services.AddSingleton(sp => new KeyAuthentication(sp.GetRequiredService<IKeyStore>(), time, sp.GetRequiredService<ILogger<KeyAuthentication>>()));
            builder.Services.AddHostedService(sp => sp.GetRequiredService<KeyAuthentication>());
        }
        if (configPath is not null)
        {
            builder.Services.AddSingleton(sp => new ConfigWatcher(configPath, models, time, sp.GetRequiredService<ILogger<ConfigWatcher>>()));
            builder.Services.AddHostedService(sp => sp.GetRequiredService<ConfigWatcher>());
        }
        if (cluster is not null)
        {
            builder.Services.AddSingleton(sp => new ClusterChanges(cluster, sp.GetService<KeyAuthentication>(), sp.GetService<ConfigWatcher>(), sp.GetRequiredService<ILogger<ClusterChanges>>()));
            builder.Services.AddHostedService(sp => sp.GetRequiredService<ClusterChanges>());
            // Router labels given on any node reach every node's RouteFeedback.
            builder.Services.AddSingleton(sp => new ClusterRouteFeedback(cluster, routeFeedback, store, store as IRouteExampleStore, time,
                sp.GetRequiredService<ILogger<ClusterRouteFeedback>>()));
            builder.Services.AddHostedService(sp => sp.GetRequiredService<ClusterRouteFeedback>());
            // Semantic cache entries added on any node reach every node's in-process index.
            builder.Services.AddSingleton(sp => new ClusterSemanticCache(cluster, models, time, sp.GetRequiredService<ILogger<ClusterSemanticCache>>()));
            builder.Services.AddHostedService(sp => sp.GetRequiredService<ClusterSemanticCache>());
        }

        var telemetry = builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddMeter(GatewayMetrics.MeterName)
                // ASP.NET Core's request, connection and error instruments; not its memory-pool meter, which counts
                // every buffer rented and returned (several per request).
                .AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.Diagnostics")
                .AddPrometheusExporter());
        if (config.Server.OtlpEndpoint is { } otlp)
        {
            telemetry.WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddOtlpExporter(o => o.Endpoint = new Uri(otlp)));
        }

        var app = builder.Build();
        if (store is SpooledLedgerStore spooled)
        {
            spooled.Logger = app.Services.GetRequiredService<ILogger<SpooledLedgerStore>>();
        }
        cluster?.UseLogging(app.Services.GetRequiredService<ILoggerFactory>());
        if (cluster is not null)
        {
            // Built now rather than at the first request, so the semantic entries loaded at start go straight into the index.
            app.Services.GetRequiredService<IChatClient>();
        }
        if (ledger is not null)
        {
            var ledgerLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<LedgerWriter>();
            ledger.AnsweredRecordsLost += (count, error) => LogAnsweredRecordsLost(ledgerLog, count, error.Message);
        }
        // Created now rather than at the first request, so the owned pools' gauges are at /metrics from the start.
        app.Services.GetRequiredService<GatewayMetrics>();
        // A model nothing prices is recorded without a cost and no budget bounds it: say so once per model at start.
        var pricingLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Marginal.Pricing");
        foreach (var unpriced in PricingCoverage.Of(config, PriceBookLoader.LoadWithOverride(config.Pricing.Book)).Where(m => m.Unpriced))
        {
            LogUnpriced(pricingLog, unpriced.Model, unpriced.Upstream);
        }
        app.UseMiddleware<ErrorGuard>();
        app.UseMiddleware<SecurityHeaders>();
        app.UseMiddleware<RequestLimits>(config.Server.MaxRequestBodyBytes);
        if (config.Server.MetricsAuth == "admin")
        {
            // Metrics name models, providers and tenants' traffic; behind the admin key when the listener is not private.
            app.Use(async (http, next) =>
            {
                if (!http.Request.Path.StartsWithSegments("/metrics", StringComparison.Ordinal) || await adminAccess.AdmitBearerAsync(http, "/metrics endpoint"))
                {
                    await next(http);
                }
            });
        }
        if (keysOn)
        {
            var authentication = app.Services.GetRequiredService<KeyAuthentication>();
            app.Use((http, next) => authentication.InvokeAsync(http, next));
        }
        // Large bodies hold their bytes of the budget until answered; after authentication, so a refused client never waits.
        var bodyBudget = app.Services.GetRequiredService<BodyBudget>();
        app.Use((http, next) => bodyBudget.InvokeAsync(http, next, config.Server.MaxRequestBodyBytes));
        app.MapChatCompletionsApi();
        app.MapResponsesApi();
        app.MapMessagesApi();
        if (store is not null)
        {
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

    /// <summary>
    /// Pricing plans, budgets and limits (<c>billing.plans</c>): the tenants' running months and credit, and admission,
    /// both started from the ledger so a restart continues the day and the month. Nothing without a plans file.
    /// </summary>
    private static (TenantAccounts?, AdmissionPolicy?) Billing(MarginalConfig config, GatewayModelSource models, IMarginalStore? store, TimeProvider time, ClusterRedis? cluster)
    {
        if (config.Billing.Plans is null)
        {
            return (null, null);
        }
        var billing = PlansLoader.Load(config);
        var accounts = new TenantAccounts(() => billing);
        ILimitCounters counters = cluster is null ? new InProcessLimitCounters(time) : cluster.Counters;
        var now = time.GetUtcNow();
        if (store is not null)
        {
            var grants = store.ReadCreditsAsync().GetAwaiter().GetResult();
            var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
            var since = grants.Count == 0 ? monthStart : grants.Min(g => g.Granted) is var first && first < monthStart ? first : monthStart;
            accounts.Seed(grants, store.ReadAsync(since).ToBlockingEnumerable(), now);
            if (cluster is null)
            {
                AdmissionPolicy.SeedAsync(counters, store.ReadAsync(monthStart), now).GetAwaiter().GetResult();
            }
            else
            {
                // Shared counters are seeded once per Redis, by the first node to start, not once per node (which
                // would count the month again for every node). See RedisLimitCounters.SeedOnceAsync.
                var seed = AdmissionPolicy.SeedChargesAsync(store.ReadAsync(monthStart), now).GetAwaiter().GetResult();
                cluster.Counters.SeedOnceAsync(seed, $"{Environment.MachineName}:{Environment.ProcessId}:{now:O}").GetAwaiter().GetResult();
                // A Redis that loses its data later (restarted without persistence) is seeded again from the ledger
                // as it is then, by the first node whose reservation finds the marker gone.
                cluster.Counters.SeedSource = async ct =>
                {
                    var at = time.GetUtcNow();
                    return await AdmissionPolicy.SeedChargesAsync(store.ReadAsync(new DateTimeOffset(at.Year, at.Month, 1, 0, 0, 0, TimeSpan.Zero), cancellationToken: ct), at, ct);
                };
            }
        }
        return (accounts, new AdmissionPolicy(models, billing, accounts, counters, time, config.Billing.DefaultMaxOutputTokens, store));
    }

    /// <summary>Opens the ledger and key store <paramref name="storage"/> names; a file that cannot be opened is a <see cref="ConfigException"/>.</summary>
    public static IMarginalStore OpenStore(StorageConfig storage)
    {
        if (storage.Kind == "postgres")
        {
            return OpenPostgres(storage);
        }
        try
        {
            return SqliteStore.Open(storage.Path, storage.Durability == "full" ? SqliteDurability.Full : SqliteDurability.Normal);
        }
        catch (Exception error) when (error is SqliteException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new ConfigException($"storage.path: cannot open the ledger '{storage.Path}': {error.Message}");
        }
    }

    /// <summary>
    /// The cluster store: PostgreSQL behind a local spool. The connection string comes from the environment or a file
    /// only; an unreachable server at start is a <see cref="ConfigException"/> (a node does not start blind).
    /// </summary>
    private static SpooledLedgerStore OpenPostgres(StorageConfig storage)
    {
        string? connectionString;
        if (storage.ConnectionStringEnv is { } env)
        {
            connectionString = Environment.GetEnvironmentVariable(env);
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                throw new ConfigException($"storage.connection_string_env: the environment variable {env} is not set; it must hold the PostgreSQL connection string (Host=…;Database=…;Username=…)");
            }
        }
        else
        {
            try
            {
                connectionString = File.ReadAllText(storage.ConnectionStringFile!).Trim();
            }
            catch (Exception error) when (error is IOException or UnauthorizedAccessException)
            {
                throw new ConfigException($"storage.connection_string_file: cannot read '{storage.ConnectionStringFile}': {error.Message}");
            }
        }
        PostgresStore postgres;
        try
        {
            postgres = PostgresStore.OpenAsync(connectionString).GetAwaiter().GetResult();
        }
        catch (ArgumentException error)
        {
            // Never echo the string itself: it holds the password.
            throw new ConfigException($"storage: the PostgreSQL connection string is not valid ({error.GetType().Name}); expected Host=…;Database=…;Username=…");
        }
        catch (Exception error) when (PostgresStore.IsUnavailable(error) || error is InvalidDataException)
        {
            throw new ConfigException($"storage: cannot open the PostgreSQL ledger: {error.Message}");
        }
        return new SpooledLedgerStore(postgres, storage.Spool, PostgresStore.IsUnavailable, TimeSpan.FromSeconds(1));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {Model} (upstream {Upstream}) has no price-book entry and no owned pool: its requests are recorded unpriced and no budget bounds them (docs/economics.md, \"Price book\")")]
    private static partial void LogUnpriced(ILogger logger, string model, string upstream);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} answered requests could not be recorded after every retry (storage.acknowledge: queued); they are not in the ledger: {Reason}")]
    private static partial void LogAnsweredRecordsLost(ILogger logger, int count, string reason);
}
