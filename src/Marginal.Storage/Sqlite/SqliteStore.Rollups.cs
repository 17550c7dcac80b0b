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
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {RollupColumns} FROM usage_rollups WHERE hour_us >= $since AND hour_us < $until ORDER BY hour_us";
        command.Parameters.AddWithValue("$since", since is { } s ? ToMicros(UsageRollup.HourOf(s)) : long.MinValue);
        command.Parameters.AddWithValue("$until", until is { } u ? ToMicros(u) : long.MaxValue);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rollups = new List<UsageRollup>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rollups.Add(ReadRollup(reader));
        }
        return rollups;
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
            foreach (var delta in deltas.Values)
            {
                await MergeRollupAsync(connection, transaction, delta, cancellationToken).ConfigureAwait(false);
            }
            await using (var state = connection.CreateCommand())
            {
                state.Transaction = transaction;
                state.CommandText = "UPDATE rollup_state SET last_rowid = $last WHERE id = 1";
                state.Parameters.AddWithValue("$last", last);
                await state.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
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

    private static async Task MergeRollupAsync(SqliteConnection connection, SqliteTransaction transaction, UsageRollup delta, CancellationToken cancellationToken)
    {
        var hour = ToMicros(delta.Hour);
        var key = new object[] { hour, delta.Tenant, delta.RequestedModel, delta.ServedModel, delta.Provider, delta.CapacitySource, delta.RouteReason, delta.CacheOutcome };
        await using (var select = connection.CreateCommand())
        {
            select.Transaction = transaction;
            select.CommandText = $"SELECT {RollupColumns} FROM usage_rollups WHERE hour_us = $p0 AND tenant = $p1 AND requested_model = $p2 AND served_model = $p3 " +
                "AND provider = $p4 AND capacity_source = $p5 AND route_reason = $p6 AND cache_outcome = $p7";
            for (var i = 0; i < key.Length; i++)
            {
                select.Parameters.AddWithValue($"$p{i}", key[i]);
            }
            await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                delta.Add(ReadRollup(reader));
            }
        }
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
