using Marginal.Core.Ledger;

namespace Marginal.Storage.Tests;

public sealed class LedgerWriterTests
{
    /// <summary>A store that remembers the size of every batch, stores nothing, and fails its first append when told to.</summary>
    private sealed class BatchCountingStore(bool failFirst = false) : ILedgerStore
    {
        public List<int> Batches { get; } = [];

        public Task<IReadOnlyList<bool>> AppendAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken = default)
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

    [Fact]
    public async Task AppendAsync_StoreFails_TaskFaultsAndWriterGoesOn()
    {
        await using var writer = new LedgerWriter(new BatchCountingStore(failFirst: true));

        await Assert.ThrowsAsync<IOException>(() => writer.AppendAsync(LedgerStoreConformance.Record("req_1")));

        Assert.True(await writer.AppendAsync(LedgerStoreConformance.Record("req_2")));
    }
}
