using System.Globalization;
using Marginal.Core.Ledger;
using Microsoft.Data.Sqlite;

namespace Marginal.Storage.Sqlite;

// Hourly rollups (migration step 3). A read first rolls forward every record appended since the last one read (by
// rowid, so late or out-of-order times are still counted once), in one transaction with the watermark, then reads the
// window's hours. Sums are exact decimals added in .NET: SQLite's SUM over TEXT money would go through REAL.
public sealed partial class SqliteStore
{
    private const string RollupKeyColumns = "hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome";
    private const string RollupColumns = RollupKeyColumns + ", requests, errors, input_tokens, cached_input_tokens, output_tokens, cost_usd, " +
        "marginal_cost_usd, priced_tokens, unpriced_requests, revenue_usd, revenue_records, unplanned_requests, levers";

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

    /// <summary>Rolls every record appended since the last call into usage_rollups; returns how many it read.</summary>
    public async Task<long> RollForwardAsync(CancellationToken cancellationToken = default)
    {
        await _rollupGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var connection = Open();
            // IMMEDIATE: take the write lock before reading the watermark, so two readers never roll the same records.
            await using var transaction = connection.BeginTransaction(deferred: false);
            var last = Convert.ToInt64(await ScalarAsync(connection, transaction, "SELECT last_rowid FROM rollup_state WHERE id = 1", cancellationToken).ConfigureAwait(false),
                CultureInfo.InvariantCulture);
            _rollupCache ??= await LoadRollupsAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
            var deltas = new Dictionary<(long, string), UsageRollup>();
            var read = 0L;
            await using (var select = connection.CreateCommand())
            {
                select.Transaction = transaction;
                select.CommandText = $"SELECT {Columns}, rowid FROM usage_records WHERE rowid > $last ORDER BY rowid";
                select.Parameters.AddWithValue("$last", last);
                await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var record = ReadRecord(reader);
                    last = reader.GetInt64(ColumnCount);
                    read++;
                    var request = record.Adjusts is { } id ? await FindAsync(connection, transaction, id, cancellationToken).ConfigureAwait(false) : null;
                    var shape = UsageRollup.For(record, request);
                    var key = (ToMicros(shape.Hour), shape.Key);
                    if (!deltas.TryGetValue(key, out var delta))
                    {
                        deltas[key] = delta = shape;
                    }
                    delta.Add(record);
                }
            }
            if (read == 0)
            {
                return 0;
            }
            foreach (var (key, delta) in deltas)
            {
                if (_rollupCache.TryGetValue(key, out var stored))
                {
                    delta.Add(stored);
                }
                await WriteRollupAsync(connection, transaction, delta, cancellationToken).ConfigureAwait(false);
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
            return read;
        }
        finally
        {
            _rollupGate.Release();
        }
    }

    private static async Task<UsageRecord?> FindAsync(SqliteConnection connection, SqliteTransaction transaction, string id, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"SELECT {Columns} FROM usage_records WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadRecord(reader) : null;
    }

    private static async Task WriteRollupAsync(SqliteConnection connection, SqliteTransaction transaction, UsageRollup delta, CancellationToken cancellationToken)
    {
        var key = new object[] { ToMicros(delta.Hour), delta.Tenant, delta.RequestedModel, delta.ServedModel, delta.Provider, delta.CapacitySource, delta.RouteReason, delta.CacheOutcome };
        await using var upsert = connection.CreateCommand();
        upsert.Transaction = transaction;
        upsert.CommandText = $"INSERT OR REPLACE INTO usage_rollups ({RollupColumns}) VALUES ({string.Join(", ", Enumerable.Range(0, 21).Select(i => $"$p{i}"))})";
        object[] values =
        [
            .. key, delta.Requests, delta.Errors, delta.InputTokens, delta.CachedInputTokens, delta.OutputTokens, Money(delta.CostUsd)!,
            Money(delta.MarginalCostUsd)!, delta.PricedTokens, delta.UnpricedRequests, Money(delta.RevenueUsd)!, delta.RevenueRecords,
            delta.UnplannedRequests, delta.LeversText,
        ];
        for (var i = 0; i < values.Length; i++)
        {
            upsert.Parameters.AddWithValue($"$p{i}", values[i]);
        }
        await upsert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static UsageRollup ReadRollup(SqliteDataReader r)
    {
        var rollup = new UsageRollup(FromMicros(r.GetInt64(0)), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetString(7))
        {
            Requests = r.GetInt64(8),
            Errors = r.GetInt64(9),
            InputTokens = r.GetInt64(10),
            CachedInputTokens = r.GetInt64(11),
            OutputTokens = r.GetInt64(12),
            CostUsd = Money(r, 13) ?? 0m,
            MarginalCostUsd = Money(r, 14) ?? 0m,
            PricedTokens = r.GetInt64(15),
            UnpricedRequests = r.GetInt64(16),
            RevenueUsd = Money(r, 17) ?? 0m,
            RevenueRecords = r.GetInt64(18),
            UnplannedRequests = r.GetInt64(19),
        };
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
