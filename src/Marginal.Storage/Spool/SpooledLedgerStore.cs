using Marginal.Core.Billing;
using Marginal.Core.Deferral;
using System.Globalization;
using Marginal.Core.Ledger;
using Marginal.Core.Tenancy;
using Marginal.Storage.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Marginal.Storage.Spool;

/// <summary>
/// Keeps the ledger writable while the shared store (PostgreSQL) is down. A batch the primary cannot take because it is
/// unreachable is appended to a local spool instead, an SQLite file with <c>synchronous=FULL</c> in
/// <see cref="Directory"/>, and the append succeeds: an acknowledged record is on the node's disk. While the primary
/// is down, appends go straight to the spool (no connect timeout per request). Every <c>replayEvery</c> the spool is
/// rotated and its closed files are replayed into the primary in batches; a file is deleted only after all of it was
/// appended, and a replay that breaks off is repeated from the file's start. The primary's unique ids make a repeated
/// replay, a retry of a request on another node, or a crash between append and delete store each record once.
/// <para>
/// During an outage the flag an append returns says whether the record was new to the spool, not to the primary: a
/// client retry of a request already in PostgreSQL may be told "new" and is still stored once. Reads (find, windows,
/// counts), feedback and keys go to the primary only: spooled records become visible when they are replayed, and
/// feedback and key changes fail while the primary is down. Thread-safe.
/// </para>
/// </summary>
public sealed partial class SpooledLedgerStore : IMarginalStore, IUsageRollups, IJobStore, IRouteExampleStore
{
    private const int ReplayBatch = 1000;

    private readonly IMarginalStore _primary;
    private readonly Func<Exception, bool> _isUnavailable;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _spoolGate = new(1, 1);
    private readonly SemaphoreSlim _replayGate = new(1, 1);
    private readonly ITimer _replayTimer;
    private SqliteStore? _current;
    private volatile bool _primaryDown;
    private int _disposed;

    /// <param name="primary">The shared store; disposed with this one.</param>
    /// <param name="directory">Where spool files live; created when absent. Files left by a crashed process are replayed.</param>
    /// <param name="isUnavailable">True for an error that means "the primary cannot be reached now" (spool and retry
    /// later); any other error fails the append as before.</param>
    /// <param name="replayEvery">How often the spool is replayed.</param>
    /// <param name="time">The clock behind the replay timer and file names; the system clock when null.</param>
    /// <param name="logger">Where the outage and its end are logged.</param>
    public SpooledLedgerStore(IMarginalStore primary, string directory, Func<Exception, bool> isUnavailable, TimeSpan replayEvery, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(primary);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(isUnavailable);
        _primary = primary;
        _isUnavailable = isUnavailable;
        _time = time ?? TimeProvider.System;
        Logger = logger ?? NullLogger.Instance;
        Directory = System.IO.Directory.CreateDirectory(directory).FullName;
        _replayTimer = _time.CreateTimer(_ => _ = ReplayAsync(), null, TimeSpan.Zero, replayEvery);
    }

    /// <summary>Where the outage, its end and replays are logged (given at construction, so a replay at start is logged too).</summary>
    public ILogger Logger { get; }

    /// <summary>The spool directory.</summary>
    public string Directory { get; }

    public string Path => _primary.Path;

    /// <summary>True from a failed append to the primary until a replay has emptied the spool.</summary>
    public bool PrimaryDown => _primaryDown;

    public async Task<IReadOnlyList<bool>> AppendAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken = default)
    {
        if (!_primaryDown)
        {
            try
            {
                return await _primary.AppendAsync(records, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception error) when (_isUnavailable(error))
            {
                _primaryDown = true;
                LogPrimaryDown(Logger, _primary.Path, Directory, error.Message);
            }
        }
        await _spoolGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _current ??= SqliteStore.Open(System.IO.Path.Combine(Directory, NewFileName()), SqliteDurability.Full);
            return await _current.AppendAsync(records, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _spoolGate.Release();
        }
    }

    // Names sort by creation time, so files are replayed oldest first.
    private string NewFileName() =>
        $"spool-{_time.GetUtcNow().ToString("yyyyMMddHHmmssfffffff", CultureInfo.InvariantCulture)}-{Guid.NewGuid():N}.db";

    /// <summary>
    /// Replays every closed spool file into the primary (the timer calls this; a test or shutdown may too). Returns how
    /// many records were sent; 0 when another replay is running, the spool is empty, or the primary is still down.
    /// </summary>
    public async Task<long> ReplayAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _disposed) == 1 || !await _replayGate.WaitAsync(0, cancellationToken).ConfigureAwait(false))
        {
            return 0;
        }
        long sent = 0;
        try
        {
            string[] files;
            await _spoolGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                // Rotate: new spooled records go to a new file, which this replay does not touch.
                if (_current is not null)
                {
                    await _current.DisposeAsync().ConfigureAwait(false);
                    _current = null;
                }
                files = [.. System.IO.Directory.GetFiles(Directory, "spool-*.db").Order(StringComparer.Ordinal)];
            }
            finally
            {
                _spoolGate.Release();
            }
            foreach (var file in files)
            {
                sent += await ReplayFileAsync(file, cancellationToken).ConfigureAwait(false);
            }
            if (files.Length > 0 || _primaryDown)
            {
                // With nothing to replay, a count is the probe that the primary answers again.
                await _primary.CountAsync(cancellationToken).ConfigureAwait(false);
                if (_primaryDown)
                {
                    LogPrimaryBack(Logger, _primary.Path, sent);
                }
                else if (sent > 0)
                {
                    // Files left by an earlier run of this node (it stopped while PostgreSQL was down) or placed here.
                    LogReplayed(Logger, sent, _primary.Path);
                }
                _primaryDown = false;
            }
        }
        catch (Exception error) when (_isUnavailable(error))
        {
            _primaryDown = true;
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            LogReplayFailed(Logger, Directory, error.Message);
        }
        finally
        {
            _replayGate.Release();
        }
        return sent;
    }

    private async Task<long> ReplayFileAsync(string file, CancellationToken cancellationToken)
    {
        long sent = 0;
        await using (var spool = SqliteStore.Open(file, SqliteDurability.Full))
        {
            var batch = new List<UsageRecord>(ReplayBatch);
            await foreach (var record in spool.ReadAsync(cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                batch.Add(record);
                if (batch.Count == ReplayBatch)
                {
                    await _primary.AppendAsync(batch, cancellationToken).ConfigureAwait(false);
                    sent += batch.Count;
                    batch.Clear();
                }
            }
            if (batch.Count > 0)
            {
                await _primary.AppendAsync(batch, cancellationToken).ConfigureAwait(false);
                sent += batch.Count;
            }
        }
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            File.Delete(file + suffix);
        }
        return sent;
    }

    /// <summary>How many records wait in the spool (closed and current files).</summary>
    public async Task<long> SpooledCountAsync(CancellationToken cancellationToken = default)
    {
        // A replay deletes the files it has sent: counting alongside it could open a file just unlinked, which SQLite
        // would take for a new, empty database. The gates are taken in the replay's order.
        await _replayGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await CountSpoolFilesAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _replayGate.Release();
        }
    }

    private async Task<long> CountSpoolFilesAsync(CancellationToken cancellationToken)
    {
        await _spoolGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long count = 0;
            foreach (var file in System.IO.Directory.GetFiles(Directory, "spool-*.db"))
            {
                if (_current is not null && file == _current.Path)
                {
                    count += await _current.CountAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                await using var spool = SqliteStore.Open(file);
                count += await spool.CountAsync(cancellationToken).ConfigureAwait(false);
            }
            return count;
        }
        finally
        {
            _spoolGate.Release();
        }
    }

    public Task<UsageRecord?> FindAsync(string id, CancellationToken cancellationToken = default) => _primary.FindAsync(id, cancellationToken);

    public IAsyncEnumerable<UsageRecord> ReadAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, CancellationToken cancellationToken = default) =>
        _primary.ReadAsync(since, until, cancellationToken);

    public Task<long> CountAsync(CancellationToken cancellationToken = default) => _primary.CountAsync(cancellationToken);

    // Rollups and deferred jobs live in the primary only (a spooled record joins the rollups when it is replayed); a
    // primary that keeps neither answers from the records and has no job store.
    public Task<IReadOnlyList<UsageRollup>> ReadRollupsAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, CancellationToken cancellationToken = default) =>
        _primary is IUsageRollups rollups
            ? rollups.ReadRollupsAsync(since, until, cancellationToken)
            : RollUpAsync(since, until, cancellationToken);

    private async Task<IReadOnlyList<UsageRollup>> RollUpAsync(DateTimeOffset? since, DateTimeOffset? until, CancellationToken cancellationToken) =>
        UsageRollup.From(await _primary.ReadAsync(since is { } s ? UsageRollup.HourOf(s) : null, until, cancellationToken).ToListAsync(cancellationToken).ConfigureAwait(false));

    private IJobStore Jobs => _primary as IJobStore ?? throw new NotSupportedException($"{_primary.Path} keeps no deferred jobs");

    public Task SaveAsync(DeferredJob job, CancellationToken cancellationToken = default) => Jobs.SaveAsync(job, cancellationToken);

    public Task<DeferredJob?> FindJobAsync(string id, CancellationToken cancellationToken = default) => Jobs.FindJobAsync(id, cancellationToken);

    public Task<IReadOnlyList<DeferredJob>> ReadActiveJobsAsync(CancellationToken cancellationToken = default) => Jobs.ReadActiveJobsAsync(cancellationToken);

    // Router labels live in the primary too: like feedback rows, they are not spooled (the feedback request fails instead).
    private IRouteExampleStore RouteExamples => _primary as IRouteExampleStore ?? throw new NotSupportedException($"{_primary.Path} keeps no router labels");

    public Task SaveRouteExampleAsync(RouteExample example, CancellationToken cancellationToken = default) => RouteExamples.SaveRouteExampleAsync(example, cancellationToken);

    public Task<IReadOnlyList<RouteExample>> ReadRouteExamplesAsync(CancellationToken cancellationToken = default) => RouteExamples.ReadRouteExamplesAsync(cancellationToken);

    public Task<IReadOnlyList<RouteExample>> ReadRouteExamplesAsync(IReadOnlyCollection<string> requestIds, CancellationToken cancellationToken = default) =>
        RouteExamples.ReadRouteExamplesAsync(requestIds, cancellationToken);

    public Task AppendFeedbackAsync(Feedback feedback, CancellationToken cancellationToken = default) => _primary.AppendFeedbackAsync(feedback, cancellationToken);

    public IAsyncEnumerable<Feedback> ReadFeedbackAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, CancellationToken cancellationToken = default) =>
        _primary.ReadFeedbackAsync(since, until, cancellationToken);

    public Task AddKeyAsync(VirtualKey key, CancellationToken cancellationToken = default) => _primary.AddKeyAsync(key, cancellationToken);

    public Task AddCreditAsync(CreditGrant grant, CancellationToken cancellationToken = default) => _primary.AddCreditAsync(grant, cancellationToken);

    public Task<IReadOnlyList<CreditGrant>> ReadCreditsAsync(CancellationToken cancellationToken = default) => _primary.ReadCreditsAsync(cancellationToken);

    public Task<VirtualKey?> FindKeyAsync(string id, CancellationToken cancellationToken = default) => _primary.FindKeyAsync(id, cancellationToken);

    public Task<IReadOnlyList<VirtualKey>> ListKeysAsync(CancellationToken cancellationToken = default) => _primary.ListKeysAsync(cancellationToken);

    public Task<bool> RevokeKeyAsync(string id, DateTimeOffset at, CancellationToken cancellationToken = default) => _primary.RevokeKeyAsync(id, at, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _replayTimer.DisposeAsync().ConfigureAwait(false);
        await _replayGate.WaitAsync().ConfigureAwait(false);
        await _spoolGate.WaitAsync().ConfigureAwait(false);
        if (_current is not null)
        {
            // The spool file stays: the next start replays it.
            await _current.DisposeAsync().ConfigureAwait(false);
            _current = null;
        }
        await _primary.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Ledger store {Store} unreachable ({Reason}); spooling records to {Directory} until it is back")]
    private static partial void LogPrimaryDown(ILogger logger, string store, string directory, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ledger store {Store} reachable again; {Records} spooled records replayed")]
    private static partial void LogPrimaryBack(ILogger logger, string store, long records);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Replayed {Records} spooled records into ledger store {Store}")]
    private static partial void LogReplayed(ILogger logger, long records, string store);

    [LoggerMessage(Level = LogLevel.Error, Message = "Replaying the ledger spool {Directory} failed ({Reason}); it is kept and retried")]
    private static partial void LogReplayFailed(ILogger logger, string directory, string reason);
}
