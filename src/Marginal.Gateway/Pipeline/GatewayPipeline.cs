using Marginal.Core.Ledger;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Capacity;
using Marginal.Gateway.Idempotency;
using Marginal.Gateway.Metering;
using Marginal.Gateway.Model;
using Marginal.Gateway.Routing;
using Marginal.Gateway.Shaping;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace Marginal.Gateway.Pipeline;

/// <summary>
/// The one place the request pipeline is assembled. The order is fixed:
/// Idempotent replay → Metering → Cache → Routing → Shaping → Capacity → provider. Metering is outermost so it sees cache hits;
/// the cache sits before routing so a hit costs no routing; capacity is innermost because it alone knows providers.
/// </summary>
public static class GatewayPipeline
{
    /// <summary>
    /// The pipeline over <paramref name="models"/>; <paramref name="ledger"/> null prices requests without recording them.
    /// <paramref name="routeFeedback"/> is the memory that feedback on routed requests teaches (null: a private one);
    /// <paramref name="accounts"/>, when given, prices each record under its tenant's plan. <paramref name="cacheStore"/>
    /// holds the exact cache (null: in process; a cluster shares one in Redis). <paramref name="replayAnswers"/>
    /// keeps the answers of requests with an Idempotency-Key for their retries (null: an in-process store bounded by
    /// <c>idempotency.max_entries</c> and <c>max_bytes</c>; a cluster shares one in Redis, so a retry on another node
    /// replays too); a key the store no longer holds is checked against <paramref name="ledger"/>'s record. Idempotent replay
    /// sits outside metering: a replay is no new usage. <paramref name="sharedSemantic"/>
    /// (cluster mode) shares semantic cache entries with the other nodes.
    /// </summary>
    public static IChatClient Build(GatewayModelSource models, TimeProvider time, LedgerWriter? ledger = null, ILoggerFactory? loggers = null,
        RouteFeedback? routeFeedback = null, TenantAccounts? accounts = null, IResponseCacheStore? cacheStore = null, IResponseCacheStore? replayAnswers = null,
        ISharedSemanticEntries? sharedSemantic = null) =>
        new ChatClientBuilder(new CapacityChatClient(models, time, loggers?.CreateLogger<CapacityChatClient>()))
            .UseIdempotentReplay(models, replayAnswers ?? ReplayStore(models, time), time, ledger?.Store)
            .UseMetering(models, ledger, time, accounts)
            .UseResponseCache(models, time, cacheStore, sharedSemantic)
            .UseRouting(models, routeFeedback)
            .UsePrefixShaping(models)
            .Build();

    private static MemoryResponseCacheStore ReplayStore(GatewayModelSource models, TimeProvider time)
    {
        var idempotency = models.Current.Config.Idempotency;
        return new MemoryResponseCacheStore(idempotency.MaxEntries, idempotency.MaxBytes, time);
    }
}
