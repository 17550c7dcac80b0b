using Marginal.Core.Ledger;
using Marginal.Storage.Postgres;
using Marginal.Storage.Spool;
using Marginal.Testing.Services;

namespace Marginal.Storage.Tests.Spool;

public sealed class SpooledLedgerStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("marginal-spool-").FullName;

    [Fact]
    public async Task AppendAsync_PostgresStoppedMidTraffic_EveryAcknowledgedRecordArrivesExactlyOnce()
    {
        await using var server = await PostgresServer.StartAsync();
        var database = await server.CreateDatabaseAsync();
        await using var store = new SpooledLedgerStore(
            await PostgresStore.OpenAsync(database), _directory, PostgresStore.IsUnavailable, TimeSpan.FromMilliseconds(200));
        await using var writer = new LedgerWriter(store);
        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<string>();
        var next = 0;
        async Task Traffic(int count)
        {
            // 8 concurrent clients, as requests finishing on a busy node.
            await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
            {
                for (var i = 0; i < count; i++)
                {
                    var id = $"req_{Interlocked.Increment(ref next)}";
                    await writer.AppendAsync(LedgerStoreConformance.Record(id));
                    acknowledged.Add(id);
                }
            }));
        }

        var before = Traffic(100);
        await Task.Delay(50);
        await server.StopAsync();
        await before;
        await Traffic(50);
        Assert.True(store.PrimaryDown);
        Assert.True(await store.SpooledCountAsync() > 0);
        await server.StartAgainAsync();
        // A retry of an already stored request while replaying must not double it.
        await writer.AppendAsync(LedgerStoreConformance.Record("req_1"));
        for (var i = 0; i < 100 && (store.PrimaryDown || await store.SpooledCountAsync() > 0); i++)
        {
            await Task.Delay(100);
        }

        Assert.False(store.PrimaryDown);
        Assert.Equal(0, await store.SpooledCountAsync());
        await using var check = await PostgresStore.OpenAsync(database);
        var stored = new List<string>();
        await foreach (var record in check.ReadAsync())
        {
            stored.Add(record.Id);
        }
        Assert.Equal(1200, acknowledged.Count);
        Assert.Equal(acknowledged.Order(StringComparer.Ordinal), stored.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task SaveRouteExampleAsync_ThroughOneNode_IsReadByAnotherNodeOfTheCluster()
    {
        var database = await (await PostgresServer.Shared).CreateDatabaseAsync();
        var example = new RouteExample("req_1", "auto", [0.6f, 0.8f]);
        await using (var first = new SpooledLedgerStore(await PostgresStore.OpenAsync(database), _directory, PostgresStore.IsUnavailable, TimeSpan.FromMilliseconds(100)))
        {
            await first.SaveRouteExampleAsync(example);
        }

        await using var second = new SpooledLedgerStore(
            await PostgresStore.OpenAsync(database), Directory.CreateTempSubdirectory("marginal-spool-").FullName, PostgresStore.IsUnavailable, TimeSpan.FromMilliseconds(100));
        var read = Assert.Single(await second.ReadRouteExamplesAsync());

        Assert.Equal(example.RequestId, read.RequestId);
        Assert.Equal(example.Embedding, read.Embedding);
    }

    [Fact]
    public async Task Open_SpoolLeftByACrashedNode_IsReplayedOnStart()
    {
        var database = await (await PostgresServer.Shared).CreateDatabaseAsync();
        await using (var left = Marginal.Storage.Sqlite.SqliteStore.Open(Path.Combine(_directory, "spool-20261128000000000000-x.db")))
        {
            await left.AppendAsync([LedgerStoreConformance.Record("req_a"), LedgerStoreConformance.Record("req_b")]);
        }

        await using var store = new SpooledLedgerStore(await PostgresStore.OpenAsync(database), _directory, PostgresStore.IsUnavailable, TimeSpan.FromMilliseconds(100));
        for (var i = 0; i < 100 && await store.CountAsync() < 2; i++)
        {
            await Task.Delay(50);
        }

        Assert.Equal(2, await store.CountAsync());
        Assert.Empty(Directory.GetFiles(_directory, "spool-*"));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
