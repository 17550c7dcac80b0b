using Marginal.Core.Ledger;
using Marginal.Core.Pricing;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Model;
using Marginal.Gateway.Tokens;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Metering;

/// <summary>
/// Prices and records an embeddings request, the way <see cref="MeteringChatClient"/> does a chat request: tokens from
/// the provider's usage, else counted with the model's encoding; cost = input tokens × the input price; durable before
/// the answer is written. Embeddings do not pass the chat pipeline, so the embeddings API calls this directly.
/// </summary>
public sealed class EmbeddingMetering(LedgerWriter? ledger, TenantAccounts? accounts = null)
{
    /// <summary>
    /// Who asked for what: the request's ledger id, tenant, key, model and arrival time; with an Idempotency-Key the
    /// body's hash, and whether the ledger already held the key for it (<paramref name="Repeat"/>: the call is recorded
    /// as an adjustment of that record, not billed again).
    /// </summary>
    public sealed record Request(string Id, string Tenant, string KeyId, string RequestedModel, DateTimeOffset Arrived, string? RequestHash = null, bool Repeat = false);

    /// <summary>Records a served request; returns its cost (null when unpriced), whether it was billed (false: a retried id) and its input tokens.</summary>
    public async Task<(decimal? Cost, bool Billed, long Tokens)> RecordAsync(Request request, ModelDeployment served, UsageDetails? usage, IReadOnlyList<string> inputs, double latencyMs)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(served);
        ArgumentNullException.ThrowIfNull(inputs);
        var reported = usage?.InputTokenCount is not null;
        var tokens = usage?.InputTokenCount ?? inputs.Sum(text => TokenCounter.CountText(served.Catalog?.TokenizerEncoding, text));
        var cost = served.Catalog is { } catalog ? CostCalculator.Cost(new TokenUsage(tokens), catalog.Price) : (decimal?)null;
        var record = new UsageRecord(
            Id: request.Id, Time: request.Arrived, Tenant: request.Tenant, KeyId: request.KeyId, RequestedModel: request.RequestedModel,
            ServedModel: served.Model, Provider: served.Provider.Name, CapacitySource: served.Catalog?.Capacity.Name(),
            Status: "ok", Streamed: false, InputTokens: tokens, CachedInputTokens: 0, CacheWriteTokens: 0, OutputTokens: 0, ReasoningTokens: 0,
            UsageSource: reported ? "reported" : "counted", LatencyMs: latencyMs, TimeToFirstTokenMs: null, CostUsd: cost, MarginalCostUsd: cost,
            RevenueUsd: null, CacheOutcome: null, RouteReason: "explicit", Levers: "", SavingsUsd: null, Attempts: 1, RequestHash: request.RequestHash);
        if (request.Repeat)
        {
            record = MeteringChatClient.Repeated(record, request.Id);
        }
        else if (accounts is not null)
        {
            // Revenue under the tenant's plan, exactly as for chat (docs/economics.md, "Revenue per request").
            record = record with { RevenueUsd = accounts.Price(record) };
        }
        if (ledger is null)
        {
            return (cost, !request.Repeat, tokens);
        }
        var stored = await ledger.RecordAsync(record);
        if (!stored)
        {
            // The key's id was taken while this call ran: the call is still on the books, beside the record that holds it.
            await ledger.RecordAsync(MeteringChatClient.Repeated(record, request.Id));
        }
        return (cost, stored && !request.Repeat, tokens);
    }
}
