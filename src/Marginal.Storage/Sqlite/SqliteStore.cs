using System.Globalization;
using System.Runtime.CompilerServices;
using Marginal.Core.Ledger;
using Marginal.Core.Tenancy;
using Microsoft.Data.Sqlite;

namespace Marginal.Storage.Sqlite;

/// <summary>
/// The embedded store: ledger and keys in one SQLite file in WAL mode. Appends go through one writer connection with a
/// prepared statement, one transaction per batch; reads open a connection each (not pooled, so a disposed store leaves
/// no file handle behind). <see cref="SqliteDurability.Normal"/> (the default) survives a killed
/// process, which is what "acknowledged means recorded" needs; <see cref="SqliteDurability.Full"/> also survives an
/// operating-system crash or power loss, at the price of an fsync per batch. Thread-safe; several processes may open
/// the same file (the CLI while the server runs), SQLite's locking orders their writes.
/// </summary>
public sealed class SqliteStore : ILedgerStore, IKeyStore
{
    private const string Columns =
        "id, time_us, tenant, key_id, requested_model, served_model, provider, capacity_source, status, streamed, " +
        "input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, usage_source, " +
        "latency_ms, ttft_ms, cost_usd, marginal_cost_usd, revenue_usd, cache_outcome, route_reason, levers, savings_usd, attempts";
    private const int ColumnCount = 26;

    private readonly string _connectionString;
    private readonly string _synchronous;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly SqliteConnection _writer;
    private readonly SqliteCommand _insert;
    private int _disposed;

    private SqliteStore(string path, SqliteDurability durability)
    {
        Path = path;
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 30 }.ToString();
        _synchronous = durability == SqliteDurability.Full ? "FULL" : "NORMAL";
        _writer = Open();
        SqliteMigrations.Apply(_writer, path);
        _insert = _writer.CreateCommand();
        _insert.CommandText = $"INSERT OR IGNORE INTO usage_records ({Columns}) VALUES ({string.Join(", ", Enumerable.Range(0, ColumnCount).Select(i => "$p" + i))})";
        for (var i = 0; i < ColumnCount; i++)
        {
            _insert.Parameters.Add(new SqliteParameter("$p" + i, null));
        }
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <summary>Opens (creating when absent) the store at <paramref name="path"/> and brings its schema up to date.</summary>
    public static SqliteStore Open(string path, SqliteDurability durability = SqliteDurability.Normal)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) is { } directory)
        {
            Directory.CreateDirectory(directory);
        }
        return new SqliteStore(path, durability);
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        // journal_mode is stored in the file; synchronous and busy_timeout are per connection.
        pragma.CommandText = $"PRAGMA journal_mode = WAL; PRAGMA synchronous = {_synchronous}; PRAGMA busy_timeout = 30000;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    public async Task<IReadOnlyList<bool>> AppendAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var inserted = new bool[records.Count];
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // BEGIN IMMEDIATE: take the write lock up front so a concurrent writer in another process makes this wait
            // (busy_timeout) rather than fail half-way.
            using var transaction = _writer.BeginTransaction(deferred: false);
            _insert.Transaction = transaction;
            for (var i = 0; i < records.Count; i++)
            {
                Bind(_insert.Parameters, records[i]);
                inserted[i] = _insert.ExecuteNonQuery() == 1;
            }
            transaction.Commit();
        }
        finally
        {
            _insert.Transaction = null;
            _writeGate.Release();
        }
        return inserted;
    }

    private static void Bind(SqliteParameterCollection p, UsageRecord r)
    {
        p[0].Value = r.Id;
        p[1].Value = ToMicros(r.Time);
        p[2].Value = r.Tenant;
        p[3].Value = r.KeyId;
        p[4].Value = r.RequestedModel;
        p[5].Value = (object?)r.ServedModel ?? DBNull.Value;
        p[6].Value = (object?)r.Provider ?? DBNull.Value;
        p[7].Value = (object?)r.CapacitySource ?? DBNull.Value;
        p[8].Value = r.Status;
        p[9].Value = r.Streamed ? 1 : 0;
        p[10].Value = r.InputTokens;
        p[11].Value = r.CachedInputTokens;
        p[12].Value = r.CacheWriteTokens;
        p[13].Value = r.OutputTokens;
        p[14].Value = r.ReasoningTokens;
        p[15].Value = r.UsageSource;
        p[16].Value = r.LatencyMs;
        p[17].Value = (object?)r.TimeToFirstTokenMs ?? DBNull.Value;
        p[18].Value = Money(r.CostUsd);
        p[19].Value = Money(r.MarginalCostUsd);
        p[20].Value = Money(r.RevenueUsd);
        p[21].Value = (object?)r.CacheOutcome ?? DBNull.Value;
        p[22].Value = (object?)r.RouteReason ?? DBNull.Value;
        p[23].Value = r.Levers;
        p[24].Value = Money(r.SavingsUsd);
        p[25].Value = r.Attempts;
    }

    private static object Money(decimal? value) => value is { } v ? v.ToString(CultureInfo.InvariantCulture) : DBNull.Value;

    private static decimal? Money(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : decimal.Parse(reader.GetString(ordinal), NumberStyles.Number, CultureInfo.InvariantCulture);

    private static long ToMicros(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;

    private static DateTimeOffset FromMicros(long micros) => DateTimeOffset.UnixEpoch.AddTicks(micros * TimeSpan.TicksPerMicrosecond);

    private static string? Text(SqliteDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static UsageRecord ReadRecord(SqliteDataReader r) => new(
        Id: r.GetString(0),
        Time: FromMicros(r.GetInt64(1)),
        Tenant: r.GetString(2),
        KeyId: r.GetString(3),
        RequestedModel: r.GetString(4),
        ServedModel: Text(r, 5),
        Provider: Text(r, 6),
        CapacitySource: Text(r, 7),
        Status: r.GetString(8),
        Streamed: r.GetInt64(9) != 0,
        InputTokens: r.GetInt64(10),
        CachedInputTokens: r.GetInt64(11),
        CacheWriteTokens: r.GetInt64(12),
        OutputTokens: r.GetInt64(13),
        ReasoningTokens: r.GetInt64(14),
        UsageSource: r.GetString(15),
        LatencyMs: r.GetDouble(16),
        TimeToFirstTokenMs: r.IsDBNull(17) ? null : r.GetDouble(17),
        CostUsd: Money(r, 18),
        MarginalCostUsd: Money(r, 19),
        RevenueUsd: Money(r, 20),
        CacheOutcome: Text(r, 21),
        RouteReason: Text(r, 22),
        Levers: r.GetString(23),
        SavingsUsd: Money(r, 24),
        Attempts: r.GetInt32(25));

    public async Task<UsageRecord?> FindAsync(string id, CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM usage_records WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadRecord(reader) : null;
    }

    public async IAsyncEnumerable<UsageRecord> ReadAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM usage_records WHERE time_us >= $since AND time_us < $until ORDER BY time_us, id";
        command.Parameters.AddWithValue("$since", since is { } s ? ToMicros(s) : long.MinValue);
        command.Parameters.AddWithValue("$until", until is { } u ? ToMicros(u) : long.MaxValue);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return ReadRecord(reader);
        }
    }

    public async Task<long> CountAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM usage_records";
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    public async Task AddKeyAsync(VirtualKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO virtual_keys (id, tenant, salt, hash, created_us, expires_us, revoked_us, models) VALUES ($id, $tenant, $salt, $hash, $created, $expires, $revoked, $models)";
        command.Parameters.AddWithValue("$id", key.Id);
        command.Parameters.AddWithValue("$tenant", key.Tenant);
        command.Parameters.AddWithValue("$salt", key.Salt);
        command.Parameters.AddWithValue("$hash", key.Hash);
        command.Parameters.AddWithValue("$created", ToMicros(key.Created));
        command.Parameters.AddWithValue("$expires", key.Expires is { } e ? ToMicros(e) : DBNull.Value);
        command.Parameters.AddWithValue("$revoked", key.Revoked is { } r ? ToMicros(r) : DBNull.Value);
        command.Parameters.AddWithValue("$models", string.Join(',', key.Models));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<VirtualKey?> FindKeyAsync(string id, CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, tenant, salt, hash, created_us, expires_us, revoked_us, models FROM virtual_keys WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadKey(reader) : null;
    }

    public async Task<IReadOnlyList<VirtualKey>> ListKeysAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, tenant, salt, hash, created_us, expires_us, revoked_us, models FROM virtual_keys ORDER BY created_us, id";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var keys = new List<VirtualKey>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            keys.Add(ReadKey(reader));
        }
        return keys;
    }

    public async Task<bool> RevokeKeyAsync(string id, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "UPDATE virtual_keys SET revoked_us = COALESCE(revoked_us, $at) WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$at", ToMicros(at));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    private static VirtualKey ReadKey(SqliteDataReader r) => new(
        Id: r.GetString(0),
        Tenant: r.GetString(1),
        Salt: (byte[])r[2],
        Hash: (byte[])r[3],
        Created: FromMicros(r.GetInt64(4)),
        Expires: r.IsDBNull(5) ? null : FromMicros(r.GetInt64(5)),
        Revoked: r.IsDBNull(6) ? null : FromMicros(r.GetInt64(6)),
        Models: r.GetString(7) is { Length: > 0 } models ? models.Split(',') : []);

    public async ValueTask DisposeAsync()
    {
        // The same store may be registered under several service types, and each disposes it.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _writeGate.WaitAsync().ConfigureAwait(false);
        await _insert.DisposeAsync().ConfigureAwait(false);
        await _writer.DisposeAsync().ConfigureAwait(false);
        _writeGate.Dispose();
    }
}

/// <summary>How far a committed batch is safe: <c>normal</c> from a killed process, <c>full</c> also from a power loss.</summary>
public enum SqliteDurability
{
    Normal,
    Full,
}
