using Marginal.Core.Budgets;
using Marginal.Core.Caching;
using Marginal.Core.Deferral;
using Marginal.Core.Ledger;
using Marginal.Core.Routing;
using Marginal.Core.Tenancy;
using Marginal.Gateway.Admission;
using Marginal.Gateway.Capacity;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Deferral;
using Marginal.Gateway.Model;
using Marginal.Gateway.Pipeline;
using Marginal.Gateway.Routing;
using Marginal.Server.Apis;
using Marginal.Server.Cluster;
using Marginal.Server.Hosting;
using Marginal.Server.Telemetry;
using Marginal.Storage;
using Marginal.Storage.Opening;
using Marginal.Storage.Redis;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Marginal.Server.Composition;

/// <summary>
/// The composition root's service steps, each registering one part of a node (after YARP's <c>AddReverseProxy()</c>).
/// <see cref="MarginalServer.Create"/> calls them in the order they are declared here; docs/architecture.md
/// ("Composition root") says what each holds. Services are registered through factories, so the container creates them
/// with their loggers and disposes them at shutdown in the reverse order of their creation.
/// </summary>
public static partial class MarginalServiceCollectionExtensions
{
    /// <summary>
    /// The clock, and the startup work (<see cref="MarginalStartup"/>): the first hosted service, so it finishes before
    /// any other starts and before the server listens.
    /// </summary>
    public static IServiceCollection AddMarginalStartup(this IServiceCollection services, MarginalConfig config, TimeProvider time)
    {
        services.AddSingleton(time);
        services.AddHostedService(sp => new MarginalStartup(sp, config, time, sp.GetRequiredService<ILogger<MarginalStartup>>()));
        return services;
    }

    /// <summary>
    /// The ledger and key store (<c>storage:</c>), when keys are on or usage is recorded, and the <see cref="LedgerWriter"/>
    /// that records into it (<c>storage.record_usage</c>). The store opens when first asked for, at the latest when the
    /// node starts; one that cannot be opened is a <see cref="ConfigException"/> then.
    /// </summary>
    public static IServiceCollection AddMarginalStorage(this IServiceCollection services, MarginalConfig config)
    {
        if (!HasStore(config))
        {
            return services;
        }
        var storage = config.Storage;
        // The container builds singletons synchronously: opening PostgreSQL (a connection and its migrations) is the
        // one wait at start that cannot be awaited. SQLite opens synchronously.
        services.AddSingleton(sp => OpenStore(storage, sp.GetRequiredService<ILoggerFactory>()).GetAwaiter().GetResult());
        services.AddSingleton<IKeyStore>(sp => sp.GetRequiredService<IMarginalStore>());
        services.AddSingleton<ILedgerStore>(sp => sp.GetRequiredService<IMarginalStore>());
        if (config.Deferral.Enabled)
        {
            // Both stores (SQLite, and PostgreSQL behind its spool) keep jobs.
            services.AddSingleton(sp => (IJobStore)sp.GetRequiredService<IMarginalStore>());
        }
        if (storage.RecordUsage)
        {
            // Created after the store, so the container disposes it first: it drains its queue into the store.
            services.AddSingleton(sp =>
            {
                var ledger = new LedgerWriter(sp.GetRequiredService<IMarginalStore>(), maxUnrecorded: storage.Acknowledge == "queued" ? storage.MaxUnrecorded : 0);
                var log = sp.GetRequiredService<ILogger<LedgerWriter>>();
                ledger.AnsweredRecordsLost += (count, error) => LogAnsweredRecordsLost(log, count, error.Message);
                return ledger;
            });
        }
        return services;
    }

    /// <summary>
    /// The request guards and background services of the host: admin access (<c>server.admin_key_env</c>), the large-body budget, the metrics,
    /// virtual keys (<c>server.auth: keys</c>) and the config file's watcher.
    /// </summary>
    public static IServiceCollection AddMarginalHosting(this IServiceCollection services, MarginalConfig config, string? configPath, TimeProvider time)
    {
        // Read now, so a key too short to use stops the node before it starts.
        services.AddSingleton(new AdminAccess(AdminAccess.ReadKey(config.Server), new AdminThrottle(time)));
        services.AddSingleton(sp => new BodyBudget(config.Server.BodyBytesInFlight, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<GatewayMetrics>();
        if (config.Server.Auth == "keys")
        {
            services.AddSingleton(sp => new KeyAuthentication(sp.GetRequiredService<IKeyStore>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<KeyAuthentication>>()));
            services.AddHostedService(sp => sp.GetRequiredService<KeyAuthentication>());
        }
        if (configPath is not null)
        {
            services.AddSingleton(sp => new ConfigWatcher(configPath, sp.GetRequiredService<GatewayModelSource>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ConfigWatcher>>()));
            services.AddHostedService(sp => sp.GetRequiredService<ConfigWatcher>());
        }
        return services;
    }

    /// <summary>
    /// Cluster mode (<c>redis:</c>, docs/operations.md): the connection, the Redis stores the gateway uses (budget and
    /// rate counters, the exact cache and idempotent answers, routed requests awaiting feedback, semantic entries) and
    /// the hosted services that keep the nodes in step (config changes, router labels, semantic cache).
    /// </summary>
    public static IServiceCollection AddMarginalCluster(this IServiceCollection services, MarginalConfig config)
    {
        if (config.Redis is not { } redis)
        {
            return services;
        }
        services.AddSingleton(sp => ClusterRedis.Connect(redis, sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<ILimitCounters>(sp => sp.GetRequiredService<ClusterRedis>().Counters);
        services.AddSingleton<IResponseCacheStore>(sp => sp.GetRequiredService<ClusterRedis>().Cache);
        if (redis.FeedbackWindow is not null)
        {
            services.AddSingleton<ISharedRoutePending>(sp => sp.GetRequiredService<ClusterRedis>().RoutePending!);
        }
        services.AddSingleton(sp => new ClusterChanges(sp.GetRequiredService<ClusterRedis>(), sp.GetService<KeyAuthentication>(), sp.GetService<ConfigWatcher>(),
            sp.GetRequiredService<ILogger<ClusterChanges>>()));
        services.AddHostedService(sp => sp.GetRequiredService<ClusterChanges>());
        // Router labels given on any node reach every node's RouteFeedback.
        services.AddSingleton(sp =>
        {
            var store = sp.GetService<IMarginalStore>();
            return new ClusterRouteFeedback(sp.GetRequiredService<ClusterRedis>(), sp.GetRequiredService<RouteFeedback>(), store,
                store as IRouteExampleStore, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ClusterRouteFeedback>>());
        });
        services.AddHostedService(sp => sp.GetRequiredService<ClusterRouteFeedback>());
        // Semantic cache entries added on any node reach every node's in-process index.
        services.AddSingleton(sp => new ClusterSemanticCache(sp.GetRequiredService<ClusterRedis>(), sp.GetRequiredService<GatewayModelSource>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ClusterSemanticCache>>()));
        services.AddSingleton<ISharedSemanticEntries>(sp => sp.GetRequiredService<ClusterSemanticCache>());
        services.AddHostedService(sp => sp.GetRequiredService<ClusterSemanticCache>());
        return services;
    }

    /// <summary>
    /// Pricing plans, budgets and limits (<c>billing.plans</c>): the tenants' running months and credit
    /// (<see cref="TenantAccounts"/>), the limit counters (in process unless the cluster shares them) and the admission
    /// policy (<see cref="AdmissionPolicy"/>, the pipeline's outermost stage).
    /// Both are started from the ledger by <see cref="MarginalStartup"/>, so a restart continues the day and the month.
    /// Nothing without a plans file.
    /// </summary>
    public static IServiceCollection AddMarginalBilling(this IServiceCollection services, MarginalConfig config)
    {
        if (config.Billing.Plans is null)
        {
            return services;
        }
        var billing = PlansLoader.Load(config);
        services.AddSingleton(new TenantAccounts(() => billing));
        services.TryAddSingleton<ILimitCounters>(sp => new InProcessLimitCounters(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new AdmissionPolicy(sp.GetRequiredService<GatewayModelSource>(), billing, sp.GetRequiredService<TenantAccounts>(), sp.GetRequiredService<ILimitCounters>(), sp.GetRequiredService<TimeProvider>(), config.Billing.DefaultMaxOutputTokens, sp.GetService<IMarginalStore>()));
        return services;
    }

    /// <summary>
    /// The gateway: the models of <paramref name="config"/> (swapped whole on reload), the request pipeline over what the
    /// steps before registered, the embeddings pipeline sharing its
    /// upstream cool-downs, and deferred jobs (<c>deferral.enabled</c>, with a store).
    /// </summary>
    public static IServiceCollection AddMarginalGateway(this IServiceCollection services, MarginalConfig config, TimeProvider time)
    {
        services.AddMarginalGateway(new GatewayModelSource(GatewayModel.Build(config, time)));
        services.AddSingleton(sp => GatewayPipeline.BuildEmbeddings(sp.GetRequiredService<GatewayModelSource>(), time, sp.GetRequiredService<UpstreamCooldowns>(),
            sp.GetService<LedgerWriter>(), sp.GetService<TenantAccounts>(), sp.GetService<AdmissionPolicy>()));
        if (HasStore(config) && config.Deferral.Enabled)
        {
            services.AddSingleton(sp => new DeferralQueue(sp.GetRequiredService<IJobStore>(), sp.GetRequiredService<GatewayModelSource>(), sp.GetService<LedgerWriter>(), time,
                sp.GetRequiredService<IChatClient>(), sp.GetRequiredService<ILogger<DeferralQueue>>(), sp.GetService<TenantAccounts>()));
            services.AddHostedService(sp => new DeferralService(sp.GetRequiredService<DeferralQueue>(), config.Deferral.FlushEvery, time, sp.GetRequiredService<ILogger<DeferralService>>()));
        }
        return services;
    }

    /// <summary>Metrics at <c>/metrics</c> (Prometheus) and, with <c>server.otlp_endpoint</c>, traces over OTLP.</summary>
    public static IServiceCollection AddMarginalTelemetry(this IServiceCollection services, ServerConfig server)
    {
        var telemetry = services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddMeter(GatewayMetrics.MeterName)
                // ASP.NET Core's request, connection and error instruments; not its memory-pool meter, which counts
                // every buffer rented and returned (several per request).
                .AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.Diagnostics")
                .AddPrometheusExporter());
        if (server.OtlpEndpoint is { } otlp)
        {
            telemetry.WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddOtlpExporter(o => o.Endpoint = new Uri(otlp)));
        }
        return services;
    }

    /// <summary>True when the node has a ledger and key store: keys are on, or usage is recorded.</summary>
    internal static bool HasStore(MarginalConfig config) => config.Server.Auth == "keys" || config.Storage.RecordUsage;

    private static async Task<IMarginalStore> OpenStore(Marginal.Core.Storage.StorageConfig storage, ILoggerFactory loggers)
    {
        try
        {
            return await MarginalStores.OpenAsync(storage, loggers).ConfigureAwait(false);
        }
        catch (StoreOpenException error)
        {
            throw new ConfigException(error.Message, error);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} answered requests could not be recorded after every retry (storage.acknowledge: queued); they are not in the ledger: {Reason}")]
    private static partial void LogAnsweredRecordsLost(ILogger logger, int count, string reason);
}
