namespace Marginal.Core.Ledger;

/// <summary>
/// One request as the ledger keeps it: who asked, what served it, what it used and what it cost. Append-only: a
/// correction is a new record, never an edit. Money is USD in <see cref="decimal"/>, never rounded here.
/// </summary>
/// <param name="Id">The request id: <c>{tenant}:{Idempotency-Key}</c> when the client sent one (the tenant escaped, see
/// <see cref="Tenancy.TenantNames.IdPrefix"/>), else a generated <c>req_…</c>. Unique in the ledger.</param>
/// <param name="Time">When the request arrived.</param>
/// <param name="Tenant">The tenant the key belongs to (<c>default</c> when the server runs without keys).</param>
/// <param name="KeyId">The virtual key's public id (<c>none</c> without keys).</param>
/// <param name="RequestedModel">The model or route alias the client named.</param>
/// <param name="ServedModel">The configured model that answered, after routing and fallback; null when none did.</param>
/// <param name="Provider">The provider that answered; null when none did.</param>
/// <param name="CapacitySource"><c>api</c>, <c>rented</c> or <c>owned</c>; null when unknown.</param>
/// <param name="Status"><c>ok</c>, or the error code that ended the request (a broken stream keeps the tokens it used).</param>
/// <param name="Streamed">True for a server-sent-events answer.</param>
/// <param name="InputTokens">All prompt tokens, cached reads and cache writes included.</param>
/// <param name="CachedInputTokens">Prompt tokens read from the provider's cache.</param>
/// <param name="CacheWriteTokens">Prompt tokens written to the provider's cache (5-minute and 1-hour together).</param>
/// <param name="OutputTokens">Generated tokens, reasoning included.</param>
/// <param name="ReasoningTokens">The part of <paramref name="OutputTokens"/> spent reasoning.</param>
/// <param name="UsageSource"><c>reported</c> by the provider, <c>counted</c> by the gateway's tokenizer, or <c>none</c>.</param>
/// <param name="LatencyMs">Arrival to last byte of the answer, in milliseconds.</param>
/// <param name="TimeToFirstTokenMs">Arrival to first streamed token; null for a non-streamed answer.</param>
/// <param name="CostUsd">Fully loaded cost; null when the served model has no price.</param>
/// <param name="MarginalCostUsd">What this request added to cost (equals <paramref name="CostUsd"/> on API capacity); null when unpriced.</param>
/// <param name="RevenueUsd">Revenue under the tenant's pricing plan; null when the tenant has none (no plans file).</param>
/// <param name="CacheOutcome">The response cache's outcome (<c>miss</c>, <c>hit-exact</c>, …); null when it did not look.</param>
/// <param name="RouteReason">Why the router chose the served model, e.g. <c>explicit</c> or <c>fallback</c>.</param>
/// <param name="Levers">Cost levers applied with what each saved, as comma-separated <c>lever=usd</c> pairs in the
/// order applied (e.g. <c>cache=0.00042</c> or <c>routing=0.0011,owned=0.0003</c>; see <see cref="LeverSavings"/>); empty when none.</param>
/// <param name="SavingsUsd">The sum of the levers' savings against their stated counterfactuals; null when none applied.</param>
/// <param name="Attempts">Upstream calls made, fallbacks included.</param>
/// <param name="Kind"><c>usage</c> for a request; <c>adjustment</c> for a correction of an earlier record (its amounts
/// are added to that record's, never replacing them); <c>outcome</c> for revenue earned by a reported outcome.</param>
/// <param name="Adjusts">For an adjustment or outcome: the id of the request it belongs to; null for a request.</param>
/// <param name="CacheSimilarity">The similarity of a semantic cache hit (cosine, 0–1); null otherwise.</param>
/// <param name="Tags">Comma-separated request tags and premium features (e.g. <c>route:auto:quality</c>); empty when none.</param>
/// <param name="RequestHash">For a request with an <c>Idempotency-Key</c>: the hash of its body (model, messages,
/// output-changing options, JSON or stream), so a later request with the same key and another body is refused even when
/// its answer is no longer kept for replay; null otherwise.</param>
public sealed record UsageRecord(
    string Id,
    DateTimeOffset Time,
    string Tenant,
    string KeyId,
    string RequestedModel,
    string? ServedModel,
    string? Provider,
    string? CapacitySource,
    string Status,
    bool Streamed,
    long InputTokens,
    long CachedInputTokens,
    long CacheWriteTokens,
    long OutputTokens,
    long ReasoningTokens,
    string UsageSource,
    double LatencyMs,
    double? TimeToFirstTokenMs,
    decimal? CostUsd,
    decimal? MarginalCostUsd,
    decimal? RevenueUsd,
    string? CacheOutcome,
    string? RouteReason,
    string Levers,
    decimal? SavingsUsd,
    int Attempts,
    string Kind = UsageRecordKinds.Usage,
    string? Adjusts = null,
    double? CacheSimilarity = null,
    string Tags = "",
    string? RequestHash = null);

/// <summary>The values of <see cref="UsageRecord.Kind"/>.</summary>
public static class UsageRecordKinds
{
    public const string Usage = "usage";
    public const string Adjustment = "adjustment";
    public const string Outcome = "outcome";
}
