using Marginal.Core.Ledger;
using Npgsql;
using NpgsqlTypes;
using static Marginal.Storage.StoreRows;

namespace Marginal.Storage.Postgres;

// Hourly rollups (migration step 4), kept at append time: every node appends, and a watermark read at query time would
// miss a record whose transaction commits after a later one was rolled. The new records' sums are formed in .NET with
// the same UsageRollup as SQLite and added to the stored rows by one upsert per table in the append's transaction, so a
// record and its sums commit together. Rows are upserted in key order, so two nodes lock them in the same order.
public sealed partial class PostgresStore : IUsageRollups
{
    private const string RollupKeyColumns = "hour_us, tenant, requested_model, served_model, provider, capacity_source, route_reason, cache_outcome";

    private const string RollupUpsert =
        $"INSERT INTO usage_rollups ({RollupKeyColumns}, requests, errors, input_tokens, cached_input_tokens, output_tokens, cost_usd, marginal_cost_usd, " +
        "priced_tokens, unpriced_requests, revenue_usd, revenue_records, unplanned_requests) SELECT * FROM unnest(" +
        "$1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], " +
        "$12::bigint[], $13::bigint[], $14::numeric[], $15::numeric[], $16::bigint[], $17::bigint[], $18::numeric[], $19::bigint[], $20::bigint[]) " +
        $"ON CONFLICT ({RollupKeyColumns}) DO UPDATE SET requests = usage_rollups.requests + excluded.requests, " +
        "errors = usage_rollups.errors + excluded.errors, input_tokens = usage_rollups.input_tokens + excluded.input_tokens, " +
        "cached_input_tokens = usage_rollups.cached_input_tokens + excluded.cached_input_tokens, " +
        "output_tokens = usage_rollups.output_tokens + excluded.output_tokens, cost_usd = usage_rollups.cost_usd + excluded.cost_usd, " +
        "marginal_cost_usd = usage_rollups.marginal_cost_usd + excluded.marginal_cost_usd, priced_tokens = usage_rollups.priced_tokens + excluded.priced_tokens, " +
        "unpriced_requests = usage_rollups.unpriced_requests + excluded.unpriced_requests, revenue_usd = usage_rollups.revenue_usd + excluded.revenue_usd, " +
        "revenue_records = usage_rollups.revenue_records + excluded.revenue_records, unplanned_requests = usage_rollups.unplanned_requests + excluded.unplanned_requests";

    private const string LeverUpsert =
        $"INSERT INTO usage_rollup_levers ({RollupKeyColumns}, lever, usd) SELECT * FROM unnest(" +
        "$1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::numeric[]) " +
        $"ON CONFLICT ({RollupKeyColumns}, lever) DO UPDATE SET usd = usage_rollup_levers.usd + excluded.usd";

    private static async Task AddToRollupsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<UsageRecord> records, CancellationToken cancellationToken)
    {
        if (records.Count == 0)
        {
            return;
        }
        // An adjustment or outcome counts under its request: in this batch, else already stored.
        var requests = new Dictionary<string, UsageRecord>(StringComparer.Ordinal);
        foreach (var record in records)
        {
            if (record.Kind == UsageRecordKinds.Usage)
            {
                requests.TryAdd(record.Id, record);
            }
        }
        var missing = records.Where(r => r.Kind != UsageRecordKinds.Usage && r.Adjusts is { } id && !requests.ContainsKey(id)).Select(r => r.Adjusts!).Distinct().ToArray();
        if (missing.Length > 0)
        {
            await using var find = new NpgsqlCommand($"SELECT {Columns} FROM usage_records WHERE id = ANY($1)", connection, transaction);
            find.Parameters.Add(new NpgsqlParameter<string[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = missing });
            await using var reader = await find.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var request = StoreRows.ReadRecord(reader, Money);
                requests.TryAdd(request.Id, request);
            }
        }
        var deltas = new SortedDictionary<(long Hour, string Key), UsageRollup>(KeyOrder.Instance);
        foreach (var record in records)
        {
            var shape = UsageRollup.For(record, record.Adjusts is { } id ? requests.GetValueOrDefault(id) : null);
            var key = (ToMicros(shape.Hour), shape.Key);
            if (!deltas.TryGetValue(key, out var delta))
            {
                deltas[key] = delta = shape;
            }
            delta.Add(record);
        }
        var rows = deltas.Values.ToList();
        await using (var upsert = new NpgsqlCommand(RollupUpsert, connection, transaction))
        {
            AddKeys(upsert.Parameters, rows);
            Add(upsert.Parameters, NpgsqlDbType.Bigint, rows.Select(r => r.Requests));
            Add(upsert.Parameters, NpgsqlDbType.Bigint, rows.Select(r => r.Errors));
            Add(upsert.Parameters, NpgsqlDbType.Bigint, rows.Select(r => r.InputTokens));
            Add(upsert.Parameters, NpgsqlDbType.Bigint, rows.Select(r => r.CachedInputTokens));
            Add(upsert.Parameters, NpgsqlDbType.Bigint, rows.Select(r => r.OutputTokens));
            Add(upsert.Parameters, NpgsqlDbType.Numeric, rows.Select(r => r.CostUsd));
            Add(upsert.Parameters, NpgsqlDbType.Numeric, rows.Select(r => r.MarginalCostUsd));
            Add(upsert.Parameters, NpgsqlDbType.Bigint, rows.Select(r => r.PricedTokens));
            Add(upsert.Parameters, NpgsqlDbType.Bigint, rows.Select(r => r.UnpricedRequests));
            Add(upsert.Parameters, NpgsqlDbType.Numeric, rows.Select(r => r.RevenueUsd));
            Add(upsert.Parameters, NpgsqlDbType.Bigint, rows.Select(r => r.RevenueRecords));
            Add(upsert.Parameters, NpgsqlDbType.Bigint, rows.Select(r => r.UnplannedRequests));
            await upsert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        var levers = rows.SelectMany(r => r.Levers.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => (Rollup: r, Lever: l.Key, Usd: l.Value))).ToList();
        if (levers.Count > 0)
        {
            await using var upsert = new NpgsqlCommand(LeverUpsert, connection, transaction);
            AddKeys(upsert.Parameters, levers.Select(l => l.Rollup).ToList());
            Add(upsert.Parameters, NpgsqlDbType.Text, levers.Select(l => l.Lever));
            Add(upsert.Parameters, NpgsqlDbType.Numeric, levers.Select(l => l.Usd));
            await upsert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static void AddKeys(NpgsqlParameterCollection p, List<UsageRollup> rows)
    {
        Add(p, NpgsqlDbType.Bigint, rows.Select(r => ToMicros(r.Hour)));
        Add(p, NpgsqlDbType.Text, rows.Select(r => r.Tenant));
        Add(p, NpgsqlDbType.Text, rows.Select(r => r.RequestedModel));
        Add(p, NpgsqlDbType.Text, rows.Select(r => r.ServedModel));
        Add(p, NpgsqlDbType.Text, rows.Select(r => r.Provider));
        Add(p, NpgsqlDbType.Text, rows.Select(r => r.CapacitySource));
        Add(p, NpgsqlDbType.Text, rows.Select(r => r.RouteReason));
        Add(p, NpgsqlDbType.Text, rows.Select(r => r.CacheOutcome));
    }

    // Every rollup row, kept per node and brought up to date on each read with only the rows changed since the last one:
    // reading all of them took seconds at 1M records (docs/benchmarks.md, "PostgreSQL rollups"). A row changed since
    // then was written by a transaction whose id is at least the previous read's snapshot xmin (every transaction that
    // had not finished by then, or began later). Ids are compared within one 2^32 epoch; a read that finds the epoch
    // changed loads every row again.
    private readonly SemaphoreSlim _rollupGate = new(1, 1);
    private Dictionary<(long Hour, string Key), UsageRollup>? _rollupCache;
    private long _rollupSnapshotXmin;

    private const string RollupSelect =
        $"SELECT {RollupKeyColumns}, requests, errors, input_tokens, cached_input_tokens, output_tokens, cost_usd, marginal_cost_usd, priced_tokens, " +
        "unpriced_requests, revenue_usd, revenue_records, unplanned_requests FROM usage_rollups";

    public async Task<IReadOnlyList<UsageRollup>> ReadRollupsAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, CancellationToken cancellationToken = default)
    {
        var from = since is { } s ? ToMicros(UsageRollup.HourOf(s)) : long.MinValue;
        var to = until is { } u ? ToMicros(u) : long.MaxValue;
        await _rollupGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            // One snapshot for the snapshot's own ids and both tables, so the levers match the sums they sit beside.
            await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
            long xmin, xmax;
            await using (var snapshot = new NpgsqlCommand(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, pg_snapshot_xmax(pg_current_snapshot())::text::bigint", connection, transaction))
            await using (var r = await snapshot.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                (xmin, xmax) = (r.GetInt64(0), r.GetInt64(1));
            }
            var whole = _rollupCache is null || _rollupSnapshotXmin >> 32 != xmax >> 32;
            var filter = whole ? "" : " WHERE xmin::text::bigint >= $1";
            var cache = whole ? new Dictionary<(long, string), UsageRollup>() : _rollupCache!;
            var replaced = new HashSet<(long, string)>();
            await using (var command = new NpgsqlCommand(RollupSelect + filter, connection, transaction))
            {
                AddSince(command, whole);
                await using var r = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var rollup = StoreRows.ReadRollup(r, static (reader, i) => reader.GetDecimal(i));
                    var key = (r.GetInt64(0), rollup.Key);
                    // Rows are replaced, never changed, so a caller may keep what an earlier read returned.
                    if (cache.TryGetValue(key, out var old))
                    {
                        foreach (var (lever, usd) in old.Levers)
                        {
                            rollup.Levers[lever] = usd;
                        }
                    }
                    cache[key] = rollup;
                    replaced.Add(key);
                }
            }
            await using (var command = new NpgsqlCommand($"SELECT {RollupKeyColumns}, lever, usd FROM usage_rollup_levers" + filter, connection, transaction))
            {
                AddSince(command, whole);
                await using var r = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var key = (r.GetInt64(0), string.Join('\u001f', r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetString(7)));
                    if (!cache.TryGetValue(key, out var rollup))
                    {
                        continue;
                    }
                    if (replaced.Add(key))
                    {
                        // A lever row whose rollup row this read did not replace (both are written in one transaction, so
                        // not expected): copied before it changes, so a rollup returned earlier stays as it was.
                        var copy = new UsageRollup(rollup.Hour, rollup.Tenant, rollup.RequestedModel, rollup.ServedModel, rollup.Provider,
                            rollup.CapacitySource, rollup.RouteReason, rollup.CacheOutcome);
                        copy.Add(rollup);
                        cache[key] = rollup = copy;
                    }
                    rollup.Levers[r.GetString(8)] = r.GetDecimal(9);
                }
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            _rollupCache = cache;
            _rollupSnapshotXmin = xmin;
            return cache.Where(r => r.Key.Item1 >= from && r.Key.Item1 < to).Select(r => r.Value)
                .OrderBy(r => r.Hour).ThenBy(r => r.Key, StringComparer.Ordinal).ToList();
        }
        finally
        {
            _rollupGate.Release();
        }
    }

    private void AddSince(NpgsqlCommand command, bool whole)
    {
        if (!whole)
        {
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = _rollupSnapshotXmin & 0xFFFF_FFFFL });
        }
    }

    /// <summary>Hour, then the dimensions in ordinal order: the order every node upserts in.</summary>
    private sealed class KeyOrder : IComparer<(long Hour, string Key)>
    {
        public static readonly KeyOrder Instance = new();

        public int Compare((long Hour, string Key) x, (long Hour, string Key) y) =>
            x.Hour != y.Hour ? x.Hour.CompareTo(y.Hour) : string.CompareOrdinal(x.Key, y.Key);
    }
}
