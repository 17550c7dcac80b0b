using System.Threading.Channels;

namespace Marginal.Core.Ledger;

/// <summary>
/// Batches records from many requests into few durable appends (group commit). A request hands in its record and
/// awaits the task: it completes once the batch holding the record is durable, with true when the record was new and
/// false when its id was already in the ledger. While one batch is being written the next one fills, so under load a
/// batch holds every request that finished during the previous write, and alone a record is written at once.
/// Thread-safe. <see cref="DisposeAsync"/> writes what is queued, then stops.
/// </summary>
public sealed class LedgerWriter : IAsyncDisposable
{
    private readonly ILedgerStore _store;
    private readonly int _maxBatch;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;

    public LedgerWriter(ILedgerStore store, int maxBatch = 4096)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        _store = store;
        _maxBatch = maxBatch;
        _loop = Task.Run(WriteLoopAsync);
    }

    /// <summary>The store behind the writer.</summary>
    public ILedgerStore Store => _store;

    /// <summary>
    /// Queues <paramref name="record"/>; the task completes when it is durable (true: new, false: a duplicate id) and
    /// faults when the store failed, in which case the record is not in the ledger. Cancelling stops the wait, not the write.
    /// </summary>
    public Task<bool> AppendAsync(UsageRecord record, CancellationToken cancellationToken = default)
    {
        var pending = new Pending(record, new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));
        ObjectDisposedException.ThrowIf(!_queue.Writer.TryWrite(pending), this);
        return pending.Done.Task.WaitAsync(cancellationToken);
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
                    batch[i].Done.TrySetResult(inserted[i]);
                }
            }
            catch (Exception error)
            {
                foreach (var pending in batch)
                {
                    pending.Done.TrySetException(error);
                }
            }
            batch.Clear();
            records.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    private readonly record struct Pending(UsageRecord Record, TaskCompletionSource<bool> Done);
}
