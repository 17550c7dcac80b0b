using Marginal.Core.Ledger;

namespace Marginal.Storage.Tests;

public sealed class LedgerWriterTests
{
    /// <summary>Appends only: the writer never reads.</summary>
    private abstract class AppendOnlyStore : ILedgerStore
    {
        public abstract Task<IReadOnlyList<bool>> AppendAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken = default);

        public Task<UsageRecord?> FindAsync(string id, CancellationToken cancellationToken = default) => Task.FromResult<UsageRecord?>(null);

        public async IAsyncEnumerable<UsageRecord> ReadAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            await Task.CompletedTask;
            yield break;
        }

        public Task<long> CountAsync(CancellationToken cancellationToken = default) => Task.FromResult(0L);

        public Task AppendFeedbackAsync(Feedback feedback, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public async IAsyncEnumerable<Feedback> ReadFeedbackAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            await Task.CompletedTask;
            yield break;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>A store that remembers the size of every batch, stores nothing, and fails its first append when told to.</summary>
    private sealed class BatchCountingStore(bool failFirst = false) : AppendOnlyStore
    {
        public List<int> Batches { get; } = [];

        public override Task<IReadOnlyList<bool>> AppendAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken = default)
        {
            lock (Batches)
            {
                Batches.Add(records.Count);
                if (failFirst && Batches.Count == 1)
                {
                    return Task.FromException<IReadOnlyList<bool>>(new IOException("disk full"));
                }
            }
            return Task.FromResult<IReadOnlyList<bool>>(records.Select(_ => true).ToArray());
        }

    }

    [Fact]
    public async Task AppendAsync_StoreFails_TaskFaultsAndWriterGoesOn()
    {
        await using var writer = new LedgerWriter(new BatchCountingStore(failFirst: true));

        await Assert.ThrowsAsync<IOException>(() => writer.AppendAsync(LedgerStoreConformance.Record("req_1")));

        Assert.True(await writer.AppendAsync(LedgerStoreConformance.Record("req_2")));
    }

    /// <summary>A store whose appends wait for <see cref="Open"/> and fail while <see cref="Failures"/> is above zero; it keeps what it stored.</summary>
    private sealed class GatedStore : AppendOnlyStore
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Failures { get; set; }

        public List<string> Stored { get; } = [];

        public void Open() => _gate.TrySetResult();

        public override async Task<IReadOnlyList<bool>> AppendAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken = default)
        {
            await _gate.Task;
            lock (Stored)
            {
                if (Failures > 0)
                {
                    Failures--;
                    throw new IOException("disk full");
                }
                Stored.AddRange(records.Select(r => r.Id));
            }
            return records.Select(_ => true).ToArray();
        }

    }

    [Fact]
    public async Task RecordAsync_NoBound_WaitsForTheCommit()
    {
        var store = new GatedStore();
        await using var writer = new LedgerWriter(store);

        var recorded = writer.RecordAsync(LedgerStoreConformance.Record("req_1"));
        await Task.Delay(50);
        Assert.False(recorded.IsCompleted);

        store.Open();
        Assert.True(await recorded);
        Assert.Equal(["req_1"], store.Stored);
    }

    [Fact]
    public async Task RecordAsync_QueuedUnderTheBound_AnsweredBeforeTheCommitAndWaitsPastIt()
    {
        var store = new GatedStore();
        await using var writer = new LedgerWriter(store, maxUnrecorded: 3);

        var early = Enumerable.Range(1, 3).Select(i => writer.RecordAsync(LedgerStoreConformance.Record($"req_{i}"))).ToList();
        var late = writer.RecordAsync(LedgerStoreConformance.Record("req_4"));

        Assert.All(early, r => Assert.True(r.IsCompletedSuccessfully && r.Result));
        Assert.Equal(3, writer.Unrecorded);
        await Task.Delay(50);
        Assert.False(late.IsCompleted);

        store.Open();
        Assert.True(await late);
        await writer.DisposeAsync();
        Assert.Equal(["req_1", "req_2", "req_3", "req_4"], store.Stored.Order());
        Assert.Equal(0, writer.Unrecorded);
    }

    [Fact]
    public async Task RecordAsync_QueuedAndTheStoreFailsTwice_AnsweredRecordsRetriedAndKept()
    {
        var store = new GatedStore { Failures = 2 };
        store.Open();
        await using var writer = new LedgerWriter(store, maxUnrecorded: 10);

        Assert.True(await writer.RecordAsync(LedgerStoreConformance.Record("req_1")));
        await writer.DisposeAsync();

        Assert.Equal(["req_1"], store.Stored);
        Assert.Equal(0, writer.Lost);
        Assert.Equal(0, writer.Unrecorded);
    }

    [Fact]
    public async Task RecordAsync_QueuedAndTheStoreNeverRecovers_CountedLostAndReported()
    {
        var store = new GatedStore { Failures = int.MaxValue };
        store.Open();
        await using var writer = new LedgerWriter(store, maxUnrecorded: 10);
        var reported = 0;
        writer.AnsweredRecordsLost += (count, _) => reported += count;

        Assert.True(await writer.RecordAsync(LedgerStoreConformance.Record("req_1")));
        await writer.DisposeAsync();

        Assert.Empty(store.Stored);
        Assert.Equal(1, writer.Lost);
        Assert.Equal(1, reported);
        Assert.Equal(0, writer.Unrecorded);
    }
}
