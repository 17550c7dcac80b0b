using Marginal.Core.Ledger;
using Marginal.Core.Tenancy;
using Marginal.Storage.Postgres;
using Marginal.Testing.Services;
using Npgsql;

namespace Marginal.Storage.Tests.Postgres;

public sealed class PostgresStoreTests : LedgerStoreConformance
{
    protected override async Task<(ILedgerStore Ledger, IKeyStore Keys)> OpenEmptyAsync()
    {
        var server = await PostgresServer.Shared;
        var store = await PostgresStore.OpenAsync(await server.CreateDatabaseAsync());
        return (store, store);
    }

    [Fact]
    public async Task OpenAsync_ExistingDatabase_KeepsRecordsAndSchema()
    {
        var database = await (await PostgresServer.Shared).CreateDatabaseAsync();
        await using (var first = await PostgresStore.OpenAsync(database))
        {
            await first.AppendAsync([Record("req_1")]);
        }

        await using var second = await PostgresStore.OpenAsync(database);

        Assert.Equal(1, await second.CountAsync());
    }

    [Fact]
    public async Task OpenAsync_DatabaseFromBeforeRequestHashes_AddsTheColumnAndKeepsOldRecordsReadable()
    {
        var database = await (await PostgresServer.Shared).CreateDatabaseAsync();
        await using (var current = await PostgresStore.OpenAsync(database))
        {
            await current.AppendAsync([Record("acme:old-key")]);
        }
        // A database as step 6 left it: no request_hash column.
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("ALTER TABLE usage_records DROP COLUMN request_hash; UPDATE marginal_schema SET version = 6;", connection);
            await command.ExecuteNonQueryAsync();
        }

        await using var upgraded = await PostgresStore.OpenAsync(database);
        await upgraded.AppendAsync([Record("acme:new-key") with { RequestHash = "abc:json" }]);

        Assert.Equal(Record("acme:old-key"), await upgraded.FindAsync("acme:old-key"));
        Assert.Equal("abc:json", (await upgraded.FindAsync("acme:new-key"))!.RequestHash);
    }

    [Fact]
    public async Task OpenAsync_ManyNodesAtOnce_MigrateOnceToTheLatestVersion()
    {
        var database = await (await PostgresServer.Shared).CreateDatabaseAsync();

        var stores = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => PostgresStore.OpenAsync(database)));

        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*), max(version) FROM marginal_schema", connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        Assert.Equal(1L, reader.GetInt64(0));
        Assert.Equal(7, reader.GetInt32(1));
        foreach (var store in stores)
        {
            await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task AppendAsync_TwoNodesSameIds_EachIdStoredOnceAndClaimedByOneNode()
    {
        var database = await (await PostgresServer.Shared).CreateDatabaseAsync();
        await using var a = await PostgresStore.OpenAsync(database);
        await using var b = await PostgresStore.OpenAsync(database);
        var records = Enumerable.Range(0, 200).Select(i => Record($"req_{i}")).ToList();

        var results = await Task.WhenAll(a.AppendAsync(records), b.AppendAsync(records));

        Assert.Equal(200, await a.CountAsync());
        Assert.All(Enumerable.Range(0, 200), i => Assert.True(results[0][i] ^ results[1][i]));
    }

    [Fact]
    public async Task Money_ManyDigits_StoredAsExactNumeric()
    {
        var database = await (await PostgresServer.Shared).CreateDatabaseAsync();
        await using var store = await PostgresStore.OpenAsync(database);
        await store.AppendAsync([Record("req_1", cost: 0.0000000000000000000000000001m), Record("req_2", cost: 79228162514264337593543950335m)]);

        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT data_type FROM information_schema.columns WHERE table_name = 'usage_records' AND column_name = 'cost_usd'", connection);

        Assert.Equal("numeric", (string?)await command.ExecuteScalarAsync());
        Assert.Equal(0.0000000000000000000000000001m, (await store.FindAsync("req_1"))!.CostUsd);
        Assert.Equal(79228162514264337593543950335m, (await store.FindAsync("req_2"))!.CostUsd);
    }
}
