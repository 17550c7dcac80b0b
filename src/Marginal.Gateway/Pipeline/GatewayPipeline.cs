using Marginal.Core.Ledger;
using Marginal.Gateway.Admission;
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
/// The one place the request pipelines are assembled. The chat order is fixed:
/// Admission → Idempotent replay → Metering → Cache → Routing → Shaping → Capacity → provider. Admission is outermost so
/// nothing runs for a refused request; metering sits outside the cache so it sees cache hits; the cache sits before
/// routing so a hit costs no routing; capacity is innermost because it alone knows providers. Embeddings:
/// Admission → Metering → Capacity → provider, with the cool-downs chat's capacity stage keeps.
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
    /// (cluster mode) shares semantic cache entries with the other nodes. <paramref name="admission"/> admits each request
    /// under budgets and limits (null: no billing plans, no admission); <paramref name="cooldowns"/> are the upstreams'
    /// cool-downs, shared with <see cref="BuildEmbeddings"/> (null: a private one).
    /// </summary>
    public static IChatClient Build(GatewayModelSource models, TimeProvider time, LedgerWriter? ledger = null, ILoggerFactory? loggers = null,
        RouteFeedback? routeFeedback = null, TenantAccounts? accounts = null, IResponseCacheStore? cacheStore = null, IResponseCacheStore? replayAnswers = null,
        ISharedSemanticEntries? sharedSemantic = null, AdmissionPolicy? admission = null, UpstreamCooldowns? cooldowns = null) =>
        new ChatClientBuilder(new CapacityChatClient(models, time, loggers?.CreateLogger<CapacityChatClient>(), cooldowns))
            .UseAdmission(admission)
            .UseIdempotentReplay(models, replayAnswers ?? ReplayStore(models, time), time, ledger?.Store)
            .UseMetering(models, ledger, time, accounts)
            .UseResponseCache(models, time, cacheStore, sharedSemantic)
            .UseRouting(models, routeFeedback)
            .UsePrefixShaping(models)
            .Build();

    /// <summary>
    /// The embeddings pipeline over <paramref name="models"/>: admission (<paramref name="admission"/> null: none), metering
    /// into <paramref name="ledger"/> (null: priced, not recorded) under the tenants' plans (<paramref name="accounts"/>),
    /// and failover along the model's chain skipping the upstreams <paramref name="cooldowns"/> holds back.
    /// </summary>
    public static IEmbeddingGenerator<string, Embedding<float>> BuildEmbeddings(GatewayModelSource models, TimeProvider time, UpstreamCooldowns cooldowns,
        LedgerWriter? ledger = null, TenantAccounts? accounts = null, AdmissionPolicy? admission = null)
    {
        var builder = new EmbeddingGeneratorBuilder<string, Embedding<float>>(new CapacityEmbeddingGenerator(models, time, cooldowns));
        if (admission is not null)
        {
            builder.Use(inner => new AdmissionEmbeddingGenerator(inner, admission));
        }
        return builder.Use(inner => new MeteringEmbeddingGenerator(inner, models, ledger, accounts, time)).Build();
    }

    private static MemoryResponseCacheStore ReplayStore(GatewayModelSource models, TimeProvider time)
    {
        var idempotency = models.Current.Config.Idempotency;
        return new MemoryResponseCacheStore(idempotency.MaxEntries, idempotency.MaxBytes, time);
    }
}
