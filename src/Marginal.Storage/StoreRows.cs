using System.Data.Common;
using Marginal.Core.Deferral;
using Marginal.Core.Ledger;
using Marginal.Core.Tenancy;

namespace Marginal.Storage;

/// <summary>
/// Rows that every store reads in the same column order (<see cref="LedgerColumns"/>), so SQLite and PostgreSQL map them
/// one way. Times are Unix microseconds; each store says how it reads money (SQLite: invariant decimal text; PostgreSQL: numeric).
/// </summary>
internal static class StoreRows
{
    public const string JobColumns =
        "id, request_id, tenant, key_id, model, status, created_us, deadline_us, request_json, batch_id, result_json, error_json, finished_us";

    public static long ToMicros(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;

    public static DateTimeOffset FromMicros(long micros) => DateTimeOffset.UnixEpoch.AddTicks(micros * TimeSpan.TicksPerMicrosecond);

    public static string? Text(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    public static double? Real(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetDouble(ordinal);

    /// <summary>
    /// A usage record in <see cref="LedgerColumns"/> order. <paramref name="money"/> reads a nullable money column the
    /// store's way. <c>streamed</c> is an integer in SQLite and a boolean in PostgreSQL: both readers' GetBoolean take it.
    /// </summary>
    public static UsageRecord ReadRecord(DbDataReader r, Func<DbDataReader, int, decimal?> money) => new(
        Id: r.GetString(0),
        Time: FromMicros(r.GetInt64(1)),
        Tenant: r.GetString(2),
        KeyId: r.GetString(3),
        RequestedModel: r.GetString(4),
        ServedModel: Text(r, 5),
        Provider: Text(r, 6),
        CapacitySource: Text(r, 7),
        Status: r.GetString(8),
        Streamed: r.GetBoolean(9),
        InputTokens: r.GetInt64(10),
        CachedInputTokens: r.GetInt64(11),
        CacheWriteTokens: r.GetInt64(12),
        OutputTokens: r.GetInt64(13),
        ReasoningTokens: r.GetInt64(14),
        UsageSource: r.GetString(15),
        LatencyMs: r.GetDouble(16),
        TimeToFirstTokenMs: Real(r, 17),
        CostUsd: money(r, 18),
        MarginalCostUsd: money(r, 19),
        RevenueUsd: money(r, 20),
        CacheOutcome: Text(r, 21),
        RouteReason: Text(r, 22),
        Levers: r.GetString(23),
        SavingsUsd: money(r, 24),
        Attempts: r.GetInt32(25),
        Kind: r.GetString(26),
        Adjusts: Text(r, 27),
        CacheSimilarity: Real(r, 28),
        Tags: r.GetString(29),
        RequestHash: Text(r, 30));

    /// <summary>A virtual key from id, tenant, salt, hash, created_us, expires_us, revoked_us and models, in that order.</summary>
    public static VirtualKey ReadKey(DbDataReader r) => new(
        Id: r.GetString(0),
        Tenant: r.GetString(1),
        Salt: r.GetFieldValue<byte[]>(2),
        Hash: r.GetFieldValue<byte[]>(3),
        Created: FromMicros(r.GetInt64(4)),
        Expires: r.IsDBNull(5) ? null : FromMicros(r.GetInt64(5)),
        Revoked: r.IsDBNull(6) ? null : FromMicros(r.GetInt64(6)),
        Models: r.GetString(7) is { Length: > 0 } models ? models.Split(',') : []);

    public static DeferredJob ReadJob(DbDataReader r) => new(
        Id: r.GetString(0),
        RequestId: r.GetString(1),
        Tenant: r.GetString(2),
        KeyId: r.GetString(3),
        Model: r.GetString(4),
        Status: r.GetString(5),
        Created: FromMicros(r.GetInt64(6)),
        Deadline: FromMicros(r.GetInt64(7)),
        RequestJson: r.GetString(8),
        BatchId: Text(r, 9),
        ResultJson: Text(r, 10),
        ErrorJson: Text(r, 11),
        Finished: r.IsDBNull(12) ? null : FromMicros(r.GetInt64(12)));

    /// <summary>A rollup from hour_us, the seven dimensions and the twelve sums, in usage_rollups' column order.</summary>
    public static UsageRollup ReadRollup(DbDataReader r, Func<DbDataReader, int, decimal> money) =>
        new(FromMicros(r.GetInt64(0)), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetString(7))
        {
            Requests = r.GetInt64(8),
            Errors = r.GetInt64(9),
            InputTokens = r.GetInt64(10),
            CachedInputTokens = r.GetInt64(11),
            OutputTokens = r.GetInt64(12),
            CostUsd = money(r, 13),
            MarginalCostUsd = money(r, 14),
            PricedTokens = r.GetInt64(15),
            UnpricedRequests = r.GetInt64(16),
            RevenueUsd = money(r, 17),
            RevenueRecords = r.GetInt64(18),
            UnplannedRequests = r.GetInt64(19),
        };
}
