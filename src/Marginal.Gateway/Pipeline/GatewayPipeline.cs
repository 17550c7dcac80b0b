using Marginal.Core.Caching;
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
using Microsoft.Extensions.DependencyInjection;
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
    /// The pipeline over the container's <see cref="GatewayModelSource"/>. Each stage takes what it needs from
    /// <paramref name="services"/>; a service that is not registered turns its feature off or keeps it in process:
    /// <list type="bullet">
    /// <item><see cref="LedgerWriter"/>: absent, requests are priced without being recorded.</item>
    /// <item><see cref="TenantAccounts"/>: each record is priced under its tenant's plan.</item>
    /// <item><see cref="RouteFeedback"/>: the memory that feedback on routed requests teaches (absent: a private one).</item>
    /// <item><see cref="IResponseCacheStore"/>: holds the exact cache and the answers of requests with an
    /// Idempotency-Key for their retries (absent: in process, the replay store bounded by <c>idempotency.max_entries</c>
    /// and <c>max_bytes</c>; a cluster shares one in Redis, so a retry on another node replays too). A key the store
    /// no longer holds is checked against the ledger writer's record.</item>
    /// <item><see cref="ISharedSemanticEntries"/> (cluster mode): shares semantic cache entries with the other nodes.</item>
    /// <item><see cref="AdmissionPolicy"/>: admits each request under budgets and limits, outermost (absent: no billing
    /// plans, no admission).</item>
    /// <item><see cref="UpstreamCooldowns"/>: the upstreams' cool-downs, shared with <see cref="BuildEmbeddings"/> (absent: a private one).</item>
    /// <item><see cref="TimeProvider"/> (absent: the system clock) and <see cref="ILoggerFactory"/>.</item>
    /// </list>
    /// Idempotent replay sits outside metering: a replay is no new usage.
    /// </summary>
    public static IChatClient Build(IServiceProvider services)
    {
        var models = services.GetRequiredService<GatewayModelSource>();
        var time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        return new ChatClientBuilder(sp => new CapacityChatClient(models, time, sp.GetService<ILoggerFactory>()?.CreateLogger<CapacityChatClient>(), sp.GetService<UpstreamCooldowns>()))
            .UseAdmission(services.GetService<AdmissionPolicy>())
            .Use((inner, sp) => new IdempotentReplayChatClient(inner, models, sp.GetService<IResponseCacheStore>() ?? ReplayStore(models, time), time,
                sp.GetService<LedgerWriter>()?.Store))
            .Use((inner, sp) => new MeteringChatClient(inner, models, sp.GetService<LedgerWriter>(), time, sp.GetService<TenantAccounts>()))
            .Use((inner, sp) => new ResponseCacheChatClient(inner, models, time, sp.GetService<IResponseCacheStore>(), shared: sp.GetService<ISharedSemanticEntries>()))
            .Use((inner, sp) => new ModelRoutingChatClient(inner, models, sp.GetService<RouteFeedback>() ?? new RouteFeedback()))
            .Use(inner => new PrefixShapingChatClient(inner, models))
            .Build(services);
    }

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
