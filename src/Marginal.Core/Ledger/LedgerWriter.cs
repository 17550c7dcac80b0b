using System.Threading.Channels;

namespace Marginal.Core.Ledger;

/// <summary>
/// Batches records from many requests into few durable appends (group commit). A request hands in its record and
/// awaits the task: it completes once the batch holding the record is durable, with true when the record was new and
/// false when its id was already in the ledger. While one batch is being written the next one fills, so under load a
/// batch holds every request that finished during the previous write, and alone a record is written at once.
/// <para>
/// With a bound on unrecorded answers (<c>storage.acknowledge: queued</c>), <see cref="RecordAsync"/> lets a request be
/// answered as soon as its record is queued, as long as fewer than that many answered records wait for their commit;
/// past the bound a request waits for its own commit again. A killed process can therefore lose at most that many
/// answered records, never more (docs/operations.md, "Acknowledging before the commit").
/// </para>
/// Thread-safe. <see cref="DisposeAsync"/> writes what is queued, then stops.
/// </summary>
public sealed class LedgerWriter : IAsyncDisposable
{
    /// <summary>How often a batch of already answered records is retried when the store fails, and the first pause.</summary>
    private const int AnsweredRetries = 6;
    private static readonly TimeSpan FirstRetryPause = TimeSpan.FromMilliseconds(20);

    private readonly ILedgerStore _store;
    private readonly int _maxBatch;
    private readonly int _maxUnrecorded;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;
    private int _unrecorded;
    private long _lost;

    /// <param name="store">Where records go.</param>
    /// <param name="maxBatch">The most records one append holds.</param>
    /// <param name="maxUnrecorded">0: every request waits for its own commit. More: up to that many requests may be
    /// answered before their records are committed (<see cref="RecordAsync"/>).</param>
    public LedgerWriter(ILedgerStore store, int maxBatch = 4096, int maxUnrecorded = 0)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxUnrecorded);
        _store = store;
        _maxBatch = maxBatch;
        _maxUnrecorded = maxUnrecorded;
        _loop = Task.Run(WriteLoopAsync);
    }

    /// <summary>The store behind the writer.</summary>
    public ILedgerStore Store => _store;

    /// <summary>Answered records not yet committed, now.</summary>
    public int Unrecorded => Volatile.Read(ref _unrecorded);

    /// <summary>Answered records the store refused through every retry; they are not in the ledger (logged by the caller's host).</summary>
    public long Lost => Interlocked.Read(ref _lost);

    /// <summary>Raised, off the request path, when answered records could not be written after every retry.</summary>
    public event Action<int, Exception>? AnsweredRecordsLost;

    /// <summary>
    /// Queues <paramref name="record"/>; the task completes when it is durable (true: new, false: a duplicate id) and
    /// faults when the store failed, in which case the record is not in the ledger. Cancelling stops the wait, not the write.
    /// </summary>
    public Task<bool> AppendAsync(UsageRecord record, CancellationToken cancellationToken = default)
    {
        var pending = new Pending(record, answered: false);
        ObjectDisposedException.ThrowIf(!_queue.Writer.TryWrite(pending), this);
        return pending.Done!.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// The record of a request about to be answered. Without a bound on unrecorded answers this is
    /// <see cref="AppendAsync"/>. With one, it completes at once with true (the record counts as new: a duplicate id
    /// is still written once, but is not reported) while fewer than the bound wait for their commit, and otherwise
    /// waits for this record's commit like <see cref="AppendAsync"/>.
    /// </summary>
    public ValueTask<bool> RecordAsync(UsageRecord record)
    {
        if (_maxUnrecorded > 0)
        {
            if (Interlocked.Increment(ref _unrecorded) <= _maxUnrecorded)
            {
                ObjectDisposedException.ThrowIf(!_queue.Writer.TryWrite(new Pending(record, answered: true)), this);
                return ValueTask.FromResult(true);
            }
            Interlocked.Decrement(ref _unrecorded);
        }
        return new ValueTask<bool>(AppendAsync(record));
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<Pending>(_maxBatch);
        var records = new List<UsageRecord>(_maxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (batch.Count < _maxBatch && reader.TryRead(out var pending))
            {
                batch.Add(pending);
                records.Add(pending.Record);
            }
            try
            {
                var inserted = await _store.AppendAsync(records).ConfigureAwait(false);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Inserted = inserted[i];
                }
                Complete(batch, error: null);
            }
            catch (Exception error)
            {
                // Requests still waiting fail with the store's error; records already answered are owed and retried.
                Complete(batch, error);
                await RetryAnsweredAsync(batch).ConfigureAwait(false);
            }
            batch.Clear();
            records.Clear();
        }
    }

    /// <summary>
    /// Completes the waiting requests of a written batch. All but the last resume on the thread pool; the last resumes
    /// on this thread, so a request alone in its batch (a quiet server) costs no thread hop to answer.
    /// </summary>
    private void Complete(List<Pending> batch, Exception? error)
    {
        Pending? last = null;
        foreach (var pending in batch)
        {
            if (pending.Answered)
            {
                if (error is null)
                {
                    Interlocked.Decrement(ref _unrecorded);
                }
                continue;
            }
            pending.Error = error;
            if (last is not null)
            {
                ThreadPool.UnsafeQueueUserWorkItem(last, preferLocal: false);
            }
            last = pending;
        }
        last?.Finish();
    }

    private async Task RetryAnsweredAsync(List<Pending> failed)
    {
        var answered = failed.Where(p => p.Answered).Select(p => p.Record).ToList();
        if (answered.Count == 0)
        {
            return;
        }
        var pause = FirstRetryPause;
        Exception? last = null;
        for (var attempt = 0; attempt < AnsweredRetries; attempt++)
        {
            await Task.Delay(pause).ConfigureAwait(false);
            pause *= 2;
            try
            {
                await _store.AppendAsync(answered).ConfigureAwait(false);
                Interlocked.Add(ref _unrecorded, -answered.Count);
                return;
            }
            catch (Exception error)
            {
                last = error;
            }
        }
        Interlocked.Add(ref _unrecorded, -answered.Count);
        Interlocked.Add(ref _lost, answered.Count);
        AnsweredRecordsLost?.Invoke(answered.Count, last!);
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    /// <summary>One record in the queue; a request waiting for its commit holds <see cref="Done"/>.</summary>
    private sealed class Pending(UsageRecord record, bool answered) : IThreadPoolWorkItem
    {
        public UsageRecord Record { get; } = record;

        /// <summary>The request was answered before the commit: nobody waits.</summary>
        public bool Answered { get; } = answered;

        // Continuations run synchronously: Complete decides which waiter resumes where.
        public TaskCompletionSource<bool>? Done { get; } = answered ? null : new TaskCompletionSource<bool>();

        public bool Inserted { get; set; }

        public Exception? Error { get; set; }

        public void Finish()
        {
            if (Error is null)
            {
                Done!.TrySetResult(Inserted);
            }
            else
            {
                Done!.TrySetException(Error);
            }
        }

        void IThreadPoolWorkItem.Execute() => Finish();
    }
}
