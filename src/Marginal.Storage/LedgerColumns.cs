namespace Marginal.Storage;

/// <summary>The column lists every store reads and writes in the same order, so the stores' schemas stay one schema.</summary>
internal static class LedgerColumns
{
    public const string UsageRecords =
        "id, time_us, tenant, key_id, requested_model, served_model, provider, capacity_source, status, streamed, " +
        "input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, usage_source, " +
        "latency_ms, ttft_ms, cost_usd, marginal_cost_usd, revenue_usd, cache_outcome, route_reason, levers, savings_usd, attempts, " +
        "kind, adjusts, cache_similarity, tags, request_hash";

    public const string VirtualKeys = "id, tenant, salt, hash, created_us, expires_us, revoked_us, models";
}
