using Marginal.Core.Pricing;
using Microsoft.Extensions.AI;

namespace Marginal.Core.Requests;

/// <summary>
/// One request as the pipeline sees it: what the client asked (init-only: id, tenant, key, whether an
/// Idempotency-Key came, the client's options: stream usage, end user, metadata, cache bypass; a deferred job), and what
/// each stage decided, written by that stage (admission: <see cref="Admission"/>; idempotent replay: the request hash,
/// answer gone, replayed; the cache: its outcome and similarity; routing: the route reason; capacity: served model,
/// provider and attempts; metering: cost, usage, revenue, billed).
/// The host creates one per request and passes it in <see cref="ChatOptions.AdditionalProperties"/> (an embeddings
/// request: <see cref="EmbeddingGenerationOptions.AdditionalProperties"/>);
/// each middleware fills its part. Not thread-safe: one request, one flow.
/// </summary>
public sealed class GatewayContext
{
    /// <summary>The key under which the context travels in <see cref="ChatOptions.AdditionalProperties"/>.</summary>
    public const string PropertyKey = "marginal.context";

    /// <summary>The ledger id of the request (<c>{tenant}:{Idempotency-Key}</c> or a generated <c>req_…</c>).</summary>
    public string RequestId { get; init; } = "";

    /// <summary>The tenant the request is attributed to.</summary>
    public string Tenant { get; init; } = "default";

    /// <summary>The public id of the virtual key the request came with; <c>none</c> without keys.</summary>
    public string KeyId { get; init; } = "none";

    /// <summary>The request's cost in USD once metered; null when the served model has no price.</summary>
    public decimal? CostUsd { get; set; }

    /// <summary>
    /// What upstream answers that were paid for and then discarded cost (a cascade's rejected cheap answer, its verifier's
    /// grade); metering adds it to the record's cost, so the ledger holds the cost of every call.
    /// </summary>
    public decimal DiscardedCostUsd { get; set; }

    /// <summary>Set by an owned pool that served the request: its cost from its share of busy time, both ways.</summary>
    public OwnedRequestCost? OwnedCost { get; set; }

    /// <summary>False when the ledger already held <see cref="RequestId"/>: a retry, answered but not billed again.</summary>
    public bool Billed { get; set; } = true;

    /// <summary>True when the client sent an <c>Idempotency-Key</c>: its finished answer is kept and replayed to retries.</summary>
    public bool IdempotencyKeyGiven { get; init; }

    /// <summary>
    /// For a request with an Idempotency-Key: the hash of its body, kept with its ledger record so the key cannot be
    /// reused for another body (<see cref="Ledger.UsageRecord.RequestHash"/>).
    /// </summary>
    public string? RequestHash { get; set; }

    /// <summary>
    /// True when the ledger already holds <see cref="RequestId"/> for this body but its answer is no longer kept for
    /// replay (a restart, an eviction, replay off): the model is called again, and that call is recorded as an
    /// adjustment of the request (cost and tokens, no revenue), so every upstream call has its record and the client is
    /// billed once.
    /// </summary>
    public bool AnswerGone { get; set; }

    /// <summary>True when the answer is the stored answer of an earlier request with the same Idempotency-Key: no model was called.</summary>
    public bool Replayed { get; set; }

    /// <summary>
    /// True for a deferred job run from the queue: it was not admitted when it was queued (admission applies to live
    /// requests), and is not admitted when it runs.
    /// </summary>
    public bool Deferred { get; init; }

    /// <summary>What admission decided (rate-limit windows, the free tier's downgrade); null when no budget, limit or free tier applies.</summary>
    public AdmissionOutcome? Admission { get; set; }

    /// <summary>The model (or route alias) the client asked for; routing fills it in when the host left it out.</summary>
    public string? RequestedModel { get; set; }

    /// <summary>The configured model that served the request, after routing and fallback.</summary>
    public string? ServedModel { get; set; }

    /// <summary>The provider that served the request.</summary>
    public string? Provider { get; set; }

    /// <summary>Why the router chose the model, e.g. <c>explicit</c>.</summary>
    public string? RouteReason { get; set; }

    /// <summary>Cache outcome, e.g. <c>miss</c>; null when the cache did not look.</summary>
    public string? CacheOutcome { get; set; }

    /// <summary>True when the client opted out of the response cache (<c>Cache-Control: no-cache</c> or <c>x-marginal-cache: bypass</c>).</summary>
    public bool CacheBypass { get; init; }

    /// <summary>Similarity of a semantic cache hit (cosine); null otherwise.</summary>
    public double? CacheSimilarity { get; set; }

    /// <summary>What each cost lever saved on this request against its counterfactual, in the order applied.</summary>
    public List<KeyValuePair<string, decimal>> Savings { get; } = [];

    /// <summary>Request tags and premium features (e.g. <c>route:auto:quality</c>), recorded in the ledger.</summary>
    public List<string> Tags { get; } = [];

    /// <summary>Revenue of the request under the tenant's pricing plan, set before the record is written; null without plans.</summary>
    public decimal? RevenueUsd { get; set; }

    /// <summary>Every upstream call tried, in order, with its outcome.</summary>
    public List<UpstreamAttempt> Attempts { get; } = [];

    /// <summary>Usage as reported by the upstream (or counted), once known.</summary>
    public UsageDetails? Usage { get; set; }

    /// <summary>True when the client asked for the final usage chunk of a stream.</summary>
    public bool IncludeStreamUsage { get; init; }

    /// <summary>The client's end-user id (OpenAI <c>user</c>), forwarded to providers that accept one.</summary>
    public string? EndUser { get; init; }

    /// <summary>The client's request metadata (OpenAI <c>metadata</c>), forwarded to providers that accept it.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
}

/// <summary>One call to one upstream: which model and provider, and how it ended (<c>ok</c> or an error code).</summary>
public sealed record UpstreamAttempt(string Model, string Provider, string Outcome);

public static class GatewayContextExtensions
{
    /// <summary>The request's context, or null when the caller did not attach one.</summary>
    public static GatewayContext? GetGatewayContext(this ChatOptions? options) => Find(options?.AdditionalProperties);

    /// <summary>Attaches <paramref name="context"/> to <paramref name="options"/>.</summary>
    public static ChatOptions WithGatewayContext(this ChatOptions options, GatewayContext context)
    {
        (options.AdditionalProperties ??= [])[GatewayContext.PropertyKey] = context;
        return options;
    }

    /// <summary>The embeddings request's context, or null when the caller did not attach one.</summary>
    public static GatewayContext? GetGatewayContext(this EmbeddingGenerationOptions? options) => Find(options?.AdditionalProperties);

    /// <summary>Attaches <paramref name="context"/> to the embeddings request's <paramref name="options"/>.</summary>
    public static EmbeddingGenerationOptions WithGatewayContext(this EmbeddingGenerationOptions options, GatewayContext context)
    {
        (options.AdditionalProperties ??= [])[GatewayContext.PropertyKey] = context;
        return options;
    }

    private static GatewayContext? Find(AdditionalPropertiesDictionary? properties) =>
        properties is not null && properties.TryGetValue(GatewayContext.PropertyKey, out var value) ? value as GatewayContext : null;
}
