using Marginal.Core.Ledger;
using Marginal.Core.Requests;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Model;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Metering;

/// <summary>
/// Prices and records each embeddings request (<see cref="EmbeddingMetering"/>) once the model answered, durable before
/// the answer is returned, and writes what it cost into the request's <see cref="GatewayContext"/> (cost, billed, input
/// tokens). A request with an Idempotency-Key whose ledger record already exists (<see cref="GatewayContext.AnswerGone"/>:
/// embeddings keep no answers to replay) is recorded as an adjustment, not billed again. Without a context it only passes the call on.
/// </summary>
public sealed class MeteringEmbeddingGenerator(IEmbeddingGenerator<string, Embedding<float>> inner, GatewayModelSource models, LedgerWriter? ledger, TenantAccounts? accounts, TimeProvider time)
    : DelegatingEmbeddingGenerator<string, Embedding<float>>(inner)
{
    private readonly EmbeddingMetering _metering = new(ledger, accounts);

    public override async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var context = options.GetGatewayContext();
        var arrived = time.GetUtcNow();
        var started = time.GetTimestamp();
        var result = await base.GenerateAsync(values, options, cancellationToken);
        if (context?.ServedModel is not { } served || !models.Current.Models.TryGetValue(served, out var route))
        {
            return result;
        }
        var inputs = values as IReadOnlyList<string> ?? [.. values];
        var request = new EmbeddingMetering.Request(context.RequestId, context.Tenant, context.KeyId, context.RequestedModel ?? served, arrived, context.RequestHash, context.AnswerGone);
        var (cost, billed, tokens) = await _metering.RecordAsync(request, route.Primary, result.Usage, inputs, time.GetElapsedTime(started).TotalMilliseconds);
        (context.CostUsd, context.Billed, context.Usage) = (cost, billed, new UsageDetails { InputTokenCount = tokens });
        return result;
    }
}
