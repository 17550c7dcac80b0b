using System.Globalization;
using Marginal.Core.Ledger;
using Microsoft.Data.Sqlite;
using static Marginal.Storage.StoreRows;

namespace Marginal.Storage.Sqlite;

// Hourly rollups (migration step 3). A read first rolls forward every record appended since the last one read (by
// rowid, so late or out-of-order times are still counted once), in one transaction with the watermark, then reads the
// window's hours. Sums are exact decimals added in .NET: SQLite's SUM over TEXT money would go through REAL.
public sealed partial class SqliteStore
{
    private const string RollupKeyColumns = "hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome";
    private const string RollupColumns = RollupKeyColumns + ", requests, errors, input_tokens, cached_input_tokens, output_tokens, cost_usd, " +
        "marginal_cost_usd, priced_tokens, unpriced_requests, revenue_usd, revenue_records, unplanned_requests, levers";

    private const int RollupColumnCount = 21;

    // The new records grouped by SQLite itself into the rollups' shape (an adjustment or outcome under its request's
    // hour and dimensions, as UsageRollup.For), so only one row per group crosses into .NET, not one per record. Money
    // is summed exactly by decimal_sum and levers by levers_sum (RegisterRollupFunctions): SQLite's SUM over TEXT
    // would go through REAL. Each group also says how many records it read.
    private const string RollForwardQuery = """
        SELECT hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome,
            SUM(is_usage), SUM(is_usage AND status <> 'ok'), SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
            decimal_sum(IFNULL(cost_usd, '')), decimal_sum(IFNULL(marginal_cost_usd, '')),
            SUM(CASE WHEN cost_usd IS NOT NULL THEN input_tokens + output_tokens ELSE 0 END),
            SUM(is_usage AND cost_usd IS NULL AND input_tokens + output_tokens > 0),
            decimal_sum(IFNULL(revenue_usd, '')), COUNT(revenue_usd), SUM(is_usage AND revenue_usd IS NULL), levers_sum(levers),
            COUNT(*)
        FROM (
            SELECT u.rowid AS rid, u.kind = 'usage' AS is_usage, u.status, u.input_tokens, u.cached_input_tokens, u.output_tokens,
                u.cost_usd, u.marginal_cost_usd, u.revenue_usd, u.levers,
                IIF(r.rowid IS NULL, u.time_us, r.time_us) / 3600000000 * 3600000000 AS hour_us,
                IIF(r.rowid IS NULL, u.tenant, r.tenant) AS tenant,
                IIF(r.rowid IS NULL, u.requested_model, r.requested_model) AS requested_model,
                IFNULL(IIF(r.rowid IS NULL, u.served_model, r.served_model), '') AS served_model,
                IFNULL(IIF(r.rowid IS NULL, u.provider, r.provider), '') AS provider,
                IFNULL(IIF(r.rowid IS NULL, u.capacity_source, r.capacity_source), '') AS capacity_source,
                IFNULL(IIF(r.rowid IS NULL, u.route_reason, r.route_reason), '') AS route_reason,
                IFNULL(IIF(r.rowid IS NULL, u.cache_outcome, r.cache_outcome), '') AS cache_outcome
            FROM usage_records u
            LEFT JOIN usage_records r ON u.kind <> 'usage' AND r.id = u.adjusts
            WHERE u.rowid > $last AND u.rowid <= $upper
        )
        GROUP BY hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome
        """;

    private readonly SemaphoreSlim _rollupGate = new(1, 1);

    public async Task<IReadOnlyList<UsageRollup>> ReadRollupsAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, CancellationToken cancellationToken = default)
    {
        await RollForwardAsync(cancellationToken).ConfigureAwait(false);
        var from = since is { } s ? ToMicros(UsageRollup.HourOf(s)) : long.MinValue;
        var to = until is { } u ? ToMicros(u) : long.MaxValue;
        await _rollupGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Cached rollups are replaced, never changed, by a roll-forward, so the caller may keep these.
            return _rollupCache!.Where(r => r.Key.Hour >= from && r.Key.Hour < to).Select(r => r.Value).OrderBy(r => r.Hour).ToList();
        }
        finally
        {
            _rollupGate.Release();
        }
    }

    // Every rollup, loaded from the table on first use and kept in step with it: reading tens of thousands of rollup
    // rows through the data reader took seconds on the 2-core machine (docs/benchmarks.md, "Dashboard").
    private Dictionary<(long Hour, string Key), UsageRollup>? _rollupCache;
    // The rollup_state watermark the cache matches.
    private long _rollupWatermark;

    private static async Task<Dictionary<(long Hour, string Key), UsageRollup>> LoadRollupsAsync(SqliteConnection connection, SqliteTransaction transaction, CancellationToken cancellationToken)
    {
        var cache = new Dictionary<(long, string), UsageRollup>();
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"SELECT {RollupColumns} FROM usage_rollups";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var rollup = ReadRollup(reader);
            cache[(reader.GetInt64(0), rollup.Key)] = rollup;
        }
        return cache;
    }

    // Records rolled per transaction. The roll-forward holds SQLite's write lock while it runs, so a first fill of a
    // large ledger goes in chunks: appends wait for one chunk (about a second on 2 cores), not for the whole fill.
    private const long RollChunk = 100_000;

    /// <summary>Rolls every record appended since the last call into usage_rollups; returns how many it read.</summary>
    public async Task<long> RollForwardAsync(CancellationToken cancellationToken = default)
    {
        await _rollupGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var read = 0L;
            while (true)
            {
                var (chunk, done) = await RollChunkAsync(cancellationToken).ConfigureAwait(false);
                read += chunk;
                if (done)
                {
                    return read;
                }
            }
        }
        finally
        {
            _rollupGate.Release();
        }
    }

    private async Task<(long Read, bool Done)> RollChunkAsync(CancellationToken cancellationToken)
    {
        await using var connection = Open();
        RegisterRollupFunctions(connection);
        // IMMEDIATE: take the write lock before reading the watermark, so two readers never roll the same records.
        await using var transaction = connection.BeginTransaction(deferred: false);
        var last = Convert.ToInt64(await ScalarAsync(connection, transaction, "SELECT last_rowid FROM rollup_state WHERE id = 1", cancellationToken).ConfigureAwait(false),
            CultureInfo.InvariantCulture);
        if (_rollupCache is null || last != _rollupWatermark)
        {
            // First use, or another store on the same file (the CLI beside the server) rolled records since this
            // one last did: its rows are newer than this cache, so read them again rather than overwrite them.
            _rollupCache = await LoadRollupsAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
            _rollupWatermark = last;
        }
        var newest = Convert.ToInt64(await ScalarAsync(connection, transaction, "SELECT IFNULL(MAX(rowid), 0) FROM usage_records", cancellationToken).ConfigureAwait(false),
            CultureInfo.InvariantCulture);
        if (newest <= last)
        {
            return (0, true);
        }
        var upper = Math.Min(newest, last + RollChunk);
        var deltas = new Dictionary<(long, string), UsageRollup>();
        var read = 0L;
        await using (var select = connection.CreateCommand())
        {
            select.Transaction = transaction;
            select.CommandText = RollForwardQuery;
            select.Parameters.AddWithValue("$last", last);
            select.Parameters.AddWithValue("$upper", upper);
            await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var delta = ReadRollup(reader);
                deltas[(reader.GetInt64(0), delta.Key)] = delta;
                read += reader.GetInt64(RollupColumnCount);
            }
        }
        last = upper;
        await using (var upsert = connection.CreateCommand())
        {
            // One statement, prepared once and re-bound per rollup: a first fill writes tens of thousands of rows.
            upsert.Transaction = transaction;
            upsert.CommandText = $"INSERT OR REPLACE INTO usage_rollups ({RollupColumns}) VALUES ({string.Join(", ", Enumerable.Range(0, RollupColumnCount).Select(i => $"$p{i}"))})";
            for (var i = 0; i < RollupColumnCount; i++)
            {
                upsert.Parameters.Add(new SqliteParameter { ParameterName = $"$p{i}" });
            }
            upsert.Prepare();
            foreach (var (key, delta) in deltas)
            {
                if (_rollupCache.TryGetValue(key, out var stored))
                {
                    delta.Add(stored);
                }
                await WriteRollupAsync(upsert, delta, cancellationToken).ConfigureAwait(false);
            }
        }
        await using (var state = connection.CreateCommand())
        {
            state.Transaction = transaction;
            state.CommandText = "UPDATE rollup_state SET last_rowid = $last WHERE id = 1";
            state.Parameters.AddWithValue("$last", last);
            await state.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        foreach (var (key, delta) in deltas)
        {
            _rollupCache[key] = delta;
        }
        _rollupWatermark = last;
        return (read, upper == newest);
    }

    private static async Task WriteRollupAsync(SqliteCommand upsert, UsageRollup delta, CancellationToken cancellationToken)
    {
        object[] values =
        [
            ToMicros(delta.Hour), delta.Tenant, delta.RequestedModel, delta.ServedModel, delta.Provider, delta.CapacitySource, delta.RouteReason, delta.CacheOutcome,
            delta.Requests, delta.Errors, delta.InputTokens, delta.CachedInputTokens, delta.OutputTokens, Money(delta.CostUsd)!,
            Money(delta.MarginalCostUsd)!, delta.PricedTokens, delta.UnpricedRequests, Money(delta.RevenueUsd)!, delta.RevenueRecords,
            delta.UnplannedRequests, delta.LeversText,
        ];
        for (var i = 0; i < values.Length; i++)
        {
            upsert.Parameters[i].Value = values[i];
        }
        await upsert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    // Exact sums for the roll-forward query: money is TEXT holding an invariant decimal ('' for none), levers are
    // LeverSavings text. Each group starts from the seed (0, or no levers), so groups never share an accumulator.
    private static void RegisterRollupFunctions(SqliteConnection connection)
    {
        connection.CreateAggregate<string, decimal, string>("decimal_sum", 0m,
            (sum, text) => text.Length == 0 ? sum : sum + decimal.Parse(text, NumberStyles.Number, CultureInfo.InvariantCulture),
            sum => sum.ToString(CultureInfo.InvariantCulture), isDeterministic: true);
        connection.CreateAggregate<string, Dictionary<string, decimal>?, string>("levers_sum", null,
            (sums, text) =>
            {
                foreach (var (lever, usd) in LeverSavings.Parse(text))
                {
                    sums ??= new Dictionary<string, decimal>(StringComparer.Ordinal);
                    sums[lever] = sums.GetValueOrDefault(lever) + usd;
                }
                return sums;
            },
            sums => sums is null ? "" : LeverSavings.Format(sums.OrderBy(l => l.Key, StringComparer.Ordinal)), isDeterministic: true);
    }

    private static UsageRollup ReadRollup(SqliteDataReader r)
    {
        var rollup = StoreRows.ReadRollup(r, static (reader, i) => Money(reader, i) ?? 0m);
        rollup.SetLevers(r.GetString(20));
        return rollup;
    }

    private static async Task<object?> ScalarAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
    }
}
