using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using Marginal.Core.Billing;
using Marginal.Core.Ledger;
using Marginal.Core.Tenancy;
using Microsoft.Data.Sqlite;
using SQLitePCL;
using static Marginal.Storage.StoreRows;

namespace Marginal.Storage.Sqlite;

/// <summary>
/// The embedded store: ledger and keys in one SQLite file in WAL mode. Appends go through one writer connection with a
/// prepared statement (SQLitePCL's raw API on that connection's handle), one transaction per batch; reads open a connection each (not pooled, so a disposed store leaves
/// no file handle behind). <see cref="SqliteDurability.Normal"/> (the default) survives a killed
/// process, which is what "acknowledged means recorded" needs; <see cref="SqliteDurability.Full"/> also survives an
/// operating-system crash or power loss, at the price of an fsync per batch. Thread-safe; several processes may open
/// the same file (the CLI while the server runs), SQLite's locking orders their writes.
/// </summary>
public sealed partial class SqliteStore : IMarginalStore, IUsageRollups
{
    private const string Columns = LedgerColumns.UsageRecords;
    private const int ColumnCount = 31;

    private readonly string _connectionString;
    private readonly string _synchronous;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly SqliteConnection _writer;
    // The append path talks to SQLite through SQLitePCL's raw API on the writer connection's handle: a prepared
    // statement bound and stepped per row costs a few microseconds, against three times that through SqliteCommand,
    // which builds a data reader and looks every parameter up by name on each execution (docs/benchmarks.md).
    private readonly sqlite3_stmt _insert;
    // A thread of its own, not a timer on the thread pool: a checkpoint ends in an fsync of the database file, and on a
    // small machine (one core: one pool worker to start with) a pool thread blocked in it stalls every request for
    // tens of milliseconds (docs/benchmarks.md, section 7, run J).
    private readonly Thread _checkpointer;
    private readonly CancellationTokenSource _closing = new();
    private int _disposed;

    /// <summary>How often the WAL is copied back into the database file, off the append path.</summary>
    public static readonly TimeSpan CheckpointEvery = TimeSpan.FromSeconds(1);

    private SqliteStore(string path, SqliteDurability durability)
    {
        Path = path;
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 30 }.ToString();
        _synchronous = durability == SqliteDurability.Full ? "FULL" : "NORMAL";
        _writer = Open();
        SqliteMigrations.Apply(_writer, path);
        var sql = $"INSERT OR IGNORE INTO usage_records ({Columns}) VALUES ({string.Join(", ", Enumerable.Repeat("?", ColumnCount))})";
        Check(raw.sqlite3_prepare_v2(_writer.Handle, sql, out _insert));
        _checkpointer = new Thread(CheckpointLoop) { IsBackground = true, Name = "SQLite checkpoint" };
        _checkpointer.Start();
    }

    // SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages and syncs the database file
    // there: measured, it added ~35 µs to every commit on average and far more to the unlucky one
    // (docs/benchmarks.md, section 7). So the store's connections turn it off, and a timer checkpoints from a
    // connection of its own. PASSIVE never blocks the writer; what it cannot copy yet is copied on a later tick.
    private void CheckpointLoop()
    {
        SqliteConnection? connection = null;
        while (!_closing.Token.WaitHandle.WaitOne(CheckpointEvery))
        {
            try
            {
                connection ??= Open();
                using var command = connection.CreateCommand();
                command.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
                command.ExecuteNonQuery();
            }
            catch (SqliteException)
            {
                // Busy or failing: the WAL only grows until a later tick succeeds; no record is at risk.
            }
        }
        connection?.Dispose();
    }

    private void Check(int rc)
    {
        if (rc is not (raw.SQLITE_OK or raw.SQLITE_DONE or raw.SQLITE_ROW))
        {
            throw new SqliteException($"{Path}: {raw.sqlite3_errmsg(_writer.Handle).utf8_to_string()}", rc);
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
        // journal_mode is stored in the file; the rest is per connection. Checkpoints are the timer's job (Checkpoint).
        pragma.CommandText = $"PRAGMA journal_mode = WAL; PRAGMA synchronous = {_synchronous}; PRAGMA busy_timeout = 30000; PRAGMA wal_autocheckpoint = 0;";
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
            var db = _writer.Handle;
            Check(raw.sqlite3_exec(db, "BEGIN IMMEDIATE"));
            try
            {
                for (var i = 0; i < records.Count; i++)
                {
                    Bind(_insert, records[i]);
                    var rc = raw.sqlite3_step(_insert);
                    raw.sqlite3_reset(_insert);
                    Check(rc);
                    inserted[i] = raw.sqlite3_changes(db) == 1;
                }
                Check(raw.sqlite3_exec(db, "COMMIT"));
            }
            catch
            {
                // Nothing of a failed batch may stay behind: its callers are told it was not recorded.
                raw.sqlite3_exec(db, "ROLLBACK");
                throw;
            }
        }
        finally
        {
            _writeGate.Release();
        }
        return inserted;
    }

    // Parameter positions are 1-based, in the order of Columns.
    private static void Bind(sqlite3_stmt s, UsageRecord r)
    {
        BindText(s, 1, r.Id);
        raw.sqlite3_bind_int64(s, 2, ToMicros(r.Time));
        BindText(s, 3, r.Tenant);
        BindText(s, 4, r.KeyId);
        BindText(s, 5, r.RequestedModel);
        BindText(s, 6, r.ServedModel);
        BindText(s, 7, r.Provider);
        BindText(s, 8, r.CapacitySource);
        BindText(s, 9, r.Status);
        raw.sqlite3_bind_int64(s, 10, r.Streamed ? 1 : 0);
        raw.sqlite3_bind_int64(s, 11, r.InputTokens);
        raw.sqlite3_bind_int64(s, 12, r.CachedInputTokens);
        raw.sqlite3_bind_int64(s, 13, r.CacheWriteTokens);
        raw.sqlite3_bind_int64(s, 14, r.OutputTokens);
        raw.sqlite3_bind_int64(s, 15, r.ReasoningTokens);
        BindText(s, 16, r.UsageSource);
        raw.sqlite3_bind_double(s, 17, r.LatencyMs);
        if (r.TimeToFirstTokenMs is { } ttft)
        {
            raw.sqlite3_bind_double(s, 18, ttft);
        }
        else
        {
            raw.sqlite3_bind_null(s, 18);
        }
        BindMoney(s, 19, r.CostUsd);
        BindMoney(s, 20, r.MarginalCostUsd);
        BindMoney(s, 21, r.RevenueUsd);
        BindText(s, 22, r.CacheOutcome);
        BindText(s, 23, r.RouteReason);
        BindText(s, 24, r.Levers);
        BindMoney(s, 25, r.SavingsUsd);
        raw.sqlite3_bind_int64(s, 26, r.Attempts);
        BindText(s, 27, r.Kind);
        BindText(s, 28, r.Adjusts);
        if (r.CacheSimilarity is { } similarity)
        {
            raw.sqlite3_bind_double(s, 29, similarity);
        }
        else
        {
            raw.sqlite3_bind_null(s, 29);
        }
        BindText(s, 30, r.Tags);
        BindText(s, 31, r.RequestHash);
    }

    private static void BindText(sqlite3_stmt statement, int index, string? value)
    {
        if (value is null)
        {
            raw.sqlite3_bind_null(statement, index);
        }
        else
        {
            raw.sqlite3_bind_text(statement, index, value);
        }
    }

    /// <summary>Binds an amount as invariant decimal text, as <see cref="Money(decimal?)"/> writes it, without a string.</summary>
    private static void BindMoney(sqlite3_stmt statement, int index, decimal? value)
    {
        if (value is not { } amount)
        {
            raw.sqlite3_bind_null(statement, index);
            return;
        }
        Span<byte> buffer = stackalloc byte[64];
        amount.TryFormat(buffer, out var length, default, CultureInfo.InvariantCulture);
        raw.sqlite3_bind_text(statement, index, buffer[..length]);
    }

    private static string? Money(decimal? value) => value?.ToString(CultureInfo.InvariantCulture);

    private static decimal? Money(DbDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : decimal.Parse(reader.GetString(ordinal), NumberStyles.Number, CultureInfo.InvariantCulture);


    public async Task<UsageRecord?> FindAsync(string id, CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM usage_records WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? StoreRows.ReadRecord(reader, Money) : null;
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
            yield return StoreRows.ReadRecord(reader, Money);
        }
    }

    public async Task<long> CountAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM usage_records";
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    public async Task AppendFeedbackAsync(Feedback feedback, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(feedback);
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO feedback (request_id, time_us, tenant, score, outcome) VALUES ($id, $time, $tenant, $score, $outcome)";
        command.Parameters.AddWithValue("$id", feedback.RequestId);
        command.Parameters.AddWithValue("$time", ToMicros(feedback.Time));
        command.Parameters.AddWithValue("$tenant", feedback.Tenant);
        command.Parameters.AddWithValue("$score", feedback.Score is { } score ? score : DBNull.Value);
        command.Parameters.AddWithValue("$outcome", (object?)feedback.Outcome ?? DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<Feedback> ReadFeedbackAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT request_id, time_us, tenant, score, outcome FROM feedback WHERE time_us >= $since AND time_us < $until ORDER BY time_us, seq";
        command.Parameters.AddWithValue("$since", since is { } s ? ToMicros(s) : long.MinValue);
        command.Parameters.AddWithValue("$until", until is { } u ? ToMicros(u) : long.MaxValue);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return new Feedback(
                reader.GetString(0), FromMicros(reader.GetInt64(1)), reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetDouble(3), Text(reader, 4));
        }
    }

    public async Task AddCreditAsync(CreditGrant grant, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(grant);
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO credit_grants (id, tenant, usd, granted_us, expires_us) VALUES ($id, $tenant, $usd, $granted, $expires)";
        command.Parameters.AddWithValue("$id", grant.Id);
        command.Parameters.AddWithValue("$tenant", grant.Tenant);
        command.Parameters.AddWithValue("$usd", Money(grant.Usd));
        command.Parameters.AddWithValue("$granted", ToMicros(grant.Granted));
        command.Parameters.AddWithValue("$expires", grant.Expires is { } e ? ToMicros(e) : DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<CreditGrant>> ReadCreditsAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, tenant, usd, granted_us, expires_us FROM credit_grants ORDER BY granted_us, id";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var grants = new List<CreditGrant>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            grants.Add(new CreditGrant(reader.GetString(0), reader.GetString(1), Money(reader, 2)!.Value, FromMicros(reader.GetInt64(3)),
                reader.IsDBNull(4) ? null : FromMicros(reader.GetInt64(4))));
        }
        return grants;
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
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? StoreRows.ReadKey(reader) : null;
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
            keys.Add(StoreRows.ReadKey(reader));
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


    public async ValueTask DisposeAsync()
    {
        // The same store may be registered under several service types, and each disposes it.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _closing.CancelAsync().ConfigureAwait(false);
        _checkpointer.Join();
        _closing.Dispose();
        await _writeGate.WaitAsync().ConfigureAwait(false);
        // Leave a compact file behind: everything copied back and the WAL emptied.
        raw.sqlite3_exec(_writer.Handle, "PRAGMA wal_checkpoint(TRUNCATE)");
        _insert.Dispose();
        await _writer.DisposeAsync().ConfigureAwait(false);
        _writeGate.Dispose();
        _rollupGate.Dispose();
    }
}

/// <summary>How far a committed batch is safe: <c>normal</c> from a killed process, <c>full</c> also from a power loss.</summary>
public enum SqliteDurability
{
    Normal,
    Full,
}
