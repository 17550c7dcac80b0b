using System.Data.Common;
using Marginal.Core.Deferral;
using Marginal.Core.Ledger;

namespace Marginal.Storage;

/// <summary>
/// Rows that every store reads in the same column order (<see cref="LedgerColumns"/>), so SQLite and PostgreSQL map them
/// one way. Times are Unix microseconds; each store says how it reads money (SQLite: invariant decimal text; PostgreSQL: numeric).
/// </summary>
internal static class StoreRows
{
    public const string JobColumns =
        "id, request_id, tenant, key_id, model, status, created_us, deadline_us, request_json, batch_id, result_json, error_json, finished_us";

    public static DateTimeOffset FromMicros(long micros) => DateTimeOffset.UnixEpoch.AddTicks(micros * TimeSpan.TicksPerMicrosecond);

    private static string? Text(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

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
