using System.Data.Common;
using System.Runtime.CompilerServices;
using Marginal.Core.Billing;
using Marginal.Core.Ledger;
using Marginal.Core.Tenancy;
using Npgsql;
using NpgsqlTypes;
using static Marginal.Storage.StoreRows;

namespace Marginal.Storage.Postgres;

/// <summary>
/// The cluster store: ledger and keys in PostgreSQL, shared by every gateway node. An append is one statement in one
/// transaction per batch: the batch travels as one array per column, is unnested server-side, and
/// <c>ON CONFLICT (id) DO NOTHING RETURNING id</c> says which rows were new, so a record retried on another node is
/// stored once; the same transaction adds the new records to the hourly rollups (PostgresStore.Rollups.cs). Money is
/// <c>numeric</c> (exact). Connections come from Npgsql's pool. Thread-safe.
/// </summary>
public sealed partial class PostgresStore : IMarginalStore
{
    private const string Columns = LedgerColumns.UsageRecords;

    private const string Insert =
        $"INSERT INTO usage_records ({Columns}) SELECT * FROM unnest(" +
        "$1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::boolean[], " +
        "$11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::text[], " +
        "$17::double precision[], $18::double precision[], $19::numeric[], $20::numeric[], $21::numeric[], $22::text[], $23::text[], $24::text[], $25::numeric[], $26::integer[], " +
        "$27::text[], $28::text[], $29::double precision[], $30::text[], $31::text[]) ON CONFLICT (id) DO NOTHING RETURNING id";

    private const string KeyColumns = LedgerColumns.VirtualKeys;

    private readonly NpgsqlDataSource _dataSource;
    private int _disposed;

    private PostgresStore(NpgsqlDataSource dataSource, string path)
    {
        _dataSource = dataSource;
        Path = path;
    }

    public string Path { get; }

    /// <summary>
    /// Connects with <paramref name="connectionString"/> (Npgsql's <c>Host=…;Database=…</c> form) and brings the schema
    /// up to date. Throws <see cref="NpgsqlException"/> when the
    /// server cannot be reached, <see cref="InvalidDataException"/> when its schema is newer than this build.
    /// </summary>
    public static async Task<PostgresStore> OpenAsync(string connectionString, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var dataSource = NpgsqlDataSource.Create(builder);
        try
        {
            await PostgresMigrations.ApplyAsync(dataSource, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return new PostgresStore(dataSource, $"postgres://{builder.Host}:{builder.Port}/{builder.Database}");
    }

    /// <summary>
    /// True when <paramref name="error"/> means the server cannot be reached or refuses work for now (network, timeout,
    /// shutdown, too many connections): the append may succeed later unchanged, so it is spooled rather than failed.
    /// </summary>
    public static bool IsUnavailable(Exception error) => error switch
    {
        PostgresException postgres => postgres.IsTransient || postgres.SqlState.StartsWith("08", StringComparison.Ordinal) || postgres.SqlState.StartsWith("57P", StringComparison.Ordinal),
        NpgsqlException => true,
        TimeoutException or System.Net.Sockets.SocketException or IOException => true,
        _ => false,
    };

    public async Task<IReadOnlyList<bool>> AppendAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var inserted = new bool[records.Count];
        if (records.Count == 0)
        {
            return inserted;
        }
        // A repeat inside the batch is never sent: the first occurrence is the candidate, later ones are duplicates.
        var first = new Dictionary<string, int>(records.Count, StringComparer.Ordinal);
        var batch = new List<UsageRecord>(records.Count);
        for (var i = 0; i < records.Count; i++)
        {
            if (first.TryAdd(records[i].Id, i))
            {
                batch.Add(records[i]);
            }
        }
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(Insert, connection, transaction);
        AddColumns(command.Parameters, batch);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                inserted[first[reader.GetString(0)]] = true;
            }
        }
        await AddToRollupsAsync(connection, transaction, records.Where((_, i) => inserted[i]).ToList(), cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return inserted;
    }

    private static void AddColumns(NpgsqlParameterCollection p, List<UsageRecord> b)
    {
        Add(p, NpgsqlDbType.Text, b.Select(r => r.Id));
        Add(p, NpgsqlDbType.Bigint, b.Select(r => ToMicros(r.Time)));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.Tenant));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.KeyId));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.RequestedModel));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.ServedModel));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.Provider));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.CapacitySource));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.Status));
        Add(p, NpgsqlDbType.Boolean, b.Select(r => r.Streamed));
        Add(p, NpgsqlDbType.Bigint, b.Select(r => r.InputTokens));
        Add(p, NpgsqlDbType.Bigint, b.Select(r => r.CachedInputTokens));
        Add(p, NpgsqlDbType.Bigint, b.Select(r => r.CacheWriteTokens));
        Add(p, NpgsqlDbType.Bigint, b.Select(r => r.OutputTokens));
        Add(p, NpgsqlDbType.Bigint, b.Select(r => r.ReasoningTokens));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.UsageSource));
        Add(p, NpgsqlDbType.Double, b.Select(r => r.LatencyMs));
        Add(p, NpgsqlDbType.Double, b.Select(r => r.TimeToFirstTokenMs));
        Add(p, NpgsqlDbType.Numeric, b.Select(r => r.CostUsd));
        Add(p, NpgsqlDbType.Numeric, b.Select(r => r.MarginalCostUsd));
        Add(p, NpgsqlDbType.Numeric, b.Select(r => r.RevenueUsd));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.CacheOutcome));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.RouteReason));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.Levers));
        Add(p, NpgsqlDbType.Numeric, b.Select(r => r.SavingsUsd));
        Add(p, NpgsqlDbType.Integer, b.Select(r => r.Attempts));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.Kind));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.Adjusts));
        Add(p, NpgsqlDbType.Double, b.Select(r => r.CacheSimilarity));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.Tags));
        Add(p, NpgsqlDbType.Text, b.Select(r => r.RequestHash));
    }

    private static void Add<T>(NpgsqlParameterCollection parameters, NpgsqlDbType type, IEnumerable<T> values) =>
        parameters.Add(new NpgsqlParameter<T[]> { NpgsqlDbType = NpgsqlDbType.Array | type, TypedValue = values.ToArray() });

    private static decimal? Money(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetDecimal(ordinal);


    public async Task<UsageRecord?> FindAsync(string id, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {Columns} FROM usage_records WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = id });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? StoreRows.ReadRecord(reader, Money) : null;
    }

    public async IAsyncEnumerable<UsageRecord> ReadAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {Columns} FROM usage_records WHERE time_us >= $1 AND time_us < $2 ORDER BY time_us, id");
        AddWindow(command, since, until);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return StoreRows.ReadRecord(reader, Money);
        }
    }

    private static void AddWindow(NpgsqlCommand command, DateTimeOffset? since, DateTimeOffset? until)
    {
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = since is { } s ? ToMicros(s) : long.MinValue });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = until is { } u ? ToMicros(u) : long.MaxValue });
    }

    public async Task<long> CountAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT count(*) FROM usage_records");
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    public async Task AppendFeedbackAsync(Feedback feedback, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(feedback);
        await using var command = _dataSource.CreateCommand("INSERT INTO feedback (request_id, time_us, tenant, score, outcome) VALUES ($1, $2, $3, $4, $5)");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = feedback.RequestId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = ToMicros(feedback.Time) });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = feedback.Tenant });
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Double, Value = feedback.Score is { } score ? score : DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)feedback.Outcome ?? DBNull.Value });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task AddCreditAsync(CreditGrant grant, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(grant);
        await using var command = _dataSource.CreateCommand("INSERT INTO credit_grants (id, tenant, usd, granted_us, expires_us) VALUES ($1, $2, $3, $4, $5)");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = grant.Id });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = grant.Tenant });
        command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = grant.Usd });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = ToMicros(grant.Granted) });
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = grant.Expires is { } e ? ToMicros(e) : DBNull.Value });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<CreditGrant>> ReadCreditsAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT id, tenant, usd, granted_us, expires_us FROM credit_grants ORDER BY granted_us, id");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var grants = new List<CreditGrant>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            grants.Add(new CreditGrant(reader.GetString(0), reader.GetString(1), reader.GetDecimal(2), FromMicros(reader.GetInt64(3)),
                reader.IsDBNull(4) ? null : FromMicros(reader.GetInt64(4))));
        }
        return grants;
    }

    public async IAsyncEnumerable<Feedback> ReadFeedbackAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT request_id, time_us, tenant, score, outcome FROM feedback WHERE time_us >= $1 AND time_us < $2 ORDER BY time_us, seq");
        AddWindow(command, since, until);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return new Feedback(reader.GetString(0), FromMicros(reader.GetInt64(1)), reader.GetString(2), Real(reader, 3), Text(reader, 4));
        }
    }

    public async Task AddKeyAsync(VirtualKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        await using var command = _dataSource.CreateCommand($"INSERT INTO virtual_keys ({KeyColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Id });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key.Tenant });
        command.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = key.Salt });
        command.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = key.Hash });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = ToMicros(key.Created) });
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = key.Expires is { } e ? ToMicros(e) : DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = key.Revoked is { } r ? ToMicros(r) : DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = string.Join(',', key.Models) });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<VirtualKey?> FindKeyAsync(string id, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {KeyColumns} FROM virtual_keys WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = id });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? StoreRows.ReadKey(reader) : null;
    }

    public async Task<IReadOnlyList<VirtualKey>> ListKeysAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {KeyColumns} FROM virtual_keys ORDER BY created_us, id");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var keys = new List<VirtualKey>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            keys.Add(StoreRows.ReadKey(reader));
        }
        return keys;
    }

    public async Task<bool> RevokeKeyAsync(string id, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("UPDATE virtual_keys SET revoked_us = COALESCE(revoked_us, $2) WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = ToMicros(at) });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }


    public async ValueTask DisposeAsync()
    {
        // The same store may be registered under several service types, and each disposes it.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }
}
