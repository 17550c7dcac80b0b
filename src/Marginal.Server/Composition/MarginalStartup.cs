using Marginal.Core.Budgets;
using Marginal.Core.Ledger;
using Marginal.Gateway.Admission;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pricing;
using Marginal.Gateway.Routing;
using Marginal.Server.Cluster;
using Marginal.Server.Telemetry;
using Marginal.Storage;
using Marginal.Storage.Redis;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Marginal.Server.Composition;

/// <summary>
/// What a node does once before it serves: the router's labels given before a restart, the tenants' months and the
/// limit counters started from the ledger, and the pieces built early so that they are complete from the first
/// request. The first hosted service (<see cref="MarginalServiceCollectionExtensions.AddMarginalStartup"/>): the host
/// starts the others, and the server listens, only after it.
/// </summary>
internal sealed partial class MarginalStartup(IServiceProvider services, MarginalConfig config, TimeProvider time, ILogger<MarginalStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var store = services.GetService<IMarginalStore>();
        if (store is IRouteExampleStore examples)
        {
            await RestoreRouteLabelsAsync(store, examples, cancellationToken).ConfigureAwait(false);
        }
        if (store is not null && services.GetService<TenantAccounts>() is { } accounts)
        {
            await SeedBillingAsync(store, accounts, services.GetRequiredService<ILimitCounters>(), cancellationToken).ConfigureAwait(false);
        }
        if (services.GetService<ClusterRedis>() is not null)
        {
            // Built now rather than at the first request, so the semantic entries loaded at start go straight into the index.
            services.GetRequiredService<IChatClient>();
        }
        // Created now rather than at the first request, so the owned pools' gauges are at /metrics from the start.
        services.GetRequiredService<GatewayMetrics>();
        // A model nothing prices is recorded without a cost and no budget bounds it: say so once per model at start.
        foreach (var unpriced in PricingCoverage.Of(config, PriceBookLoader.LoadWithOverride(config.Pricing.Book)).Where(m => m.Unpriced))
        {
            LogUnpriced(logger, unpriced.Model, unpriced.Upstream);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Labels given before a restart: stored embeddings joined to their feedback rows.</summary>
    private async Task RestoreRouteLabelsAsync(IMarginalStore store, IRouteExampleStore examples, CancellationToken cancellationToken)
    {
        var stored = await examples.ReadRouteExamplesAsync(cancellationToken).ConfigureAwait(false);
        if (stored.Count > 0)
        {
            var feedback = new List<Feedback>();
            await foreach (var row in store.ReadFeedbackAsync(cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                feedback.Add(row);
            }
            services.GetRequiredService<RouteFeedback>().Restore(stored, feedback);
        }
    }

    /// <summary>
    /// The tenants' running months and credit, and the limit counters, from the ledger, so a restart continues the day
    /// and the month.
    /// </summary>
    private async Task SeedBillingAsync(IMarginalStore store, TenantAccounts accounts, ILimitCounters counters, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var grants = await store.ReadCreditsAsync(cancellationToken).ConfigureAwait(false);
        var monthStart = MonthStart(now);
        var since = grants.Count == 0 ? monthStart : grants.Min(g => g.Granted) is var first && first < monthStart ? first : monthStart;
        await accounts.SeedAsync(grants, store.ReadAsync(since, cancellationToken: cancellationToken), now, cancellationToken).ConfigureAwait(false);
        if (counters is not RedisLimitCounters shared)
        {
            await AdmissionPolicy.SeedAsync(counters, store.ReadAsync(monthStart, cancellationToken: cancellationToken), now, cancellationToken).ConfigureAwait(false);
            return;
        }
        // Shared counters are seeded once per Redis, by the first node to start, not once per node (which would count
        // the month again for every node). See RedisLimitCounters.SeedOnceAsync.
        var seed = await AdmissionPolicy.SeedChargesAsync(store.ReadAsync(monthStart, cancellationToken: cancellationToken), now, cancellationToken).ConfigureAwait(false);
        await shared.SeedOnceAsync(seed, $"{Environment.MachineName}:{Environment.ProcessId}:{now:O}").ConfigureAwait(false);
        // A Redis that loses its data later (restarted without persistence) is seeded again from the ledger as it is
        // then, by the first node whose reservation finds the marker gone.
        shared.SeedSource = async ct =>
        {
            var at = time.GetUtcNow();
            return await AdmissionPolicy.SeedChargesAsync(store.ReadAsync(MonthStart(at), cancellationToken: ct), at, ct).ConfigureAwait(false);
        };
    }

    private static DateTimeOffset MonthStart(DateTimeOffset at) => new(at.Year, at.Month, 1, 0, 0, 0, TimeSpan.Zero);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {Model} (upstream {Upstream}) has no price-book entry and no owned pool: its requests are recorded unpriced and no budget bounds them (docs/economics.md, \"Price book\")")]
    private static partial void LogUnpriced(ILogger logger, string model, string upstream);
}
