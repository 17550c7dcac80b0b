using Marginal.Core.Billing;
using Marginal.Core.Ledger;
using Marginal.Core.Tenancy;
using Marginal.Storage.Sqlite;
using Microsoft.Data.Sqlite;

namespace Marginal.Storage.Tests.Sqlite;

public sealed class SqliteStoreTests : LedgerStoreConformance, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("marginal-ledger-").FullName;

    protected override Task<(ILedgerStore Ledger, IKeyStore Keys)> OpenEmptyAsync()
    {
        var store = SqliteStore.Open(Path.Combine(_directory, $"{Guid.NewGuid():N}.db"));
        return Task.FromResult<(ILedgerStore, IKeyStore)>((store, store));
    }

    [Fact]
    public async Task Open_ExistingFile_KeepsRecordsAndSchema()
    {
        var path = Path.Combine(_directory, "reopen.db");
        await using (var first = SqliteStore.Open(path))
        {
            await first.AppendAsync([Record("req_1")]);
        }

        await using var second = SqliteStore.Open(path);

        Assert.Equal(1, await second.CountAsync());
    }

    [Fact]
    public async Task Open_FileFromBeforeRequestHashes_AddsTheColumnAndKeepsOldRecordsReadable()
    {
        var path = Path.Combine(_directory, "step6.db");
        await using (var current = SqliteStore.Open(path))
        {
            await current.AppendAsync([Record("acme:old-key")]);
        }
        // A file as step 6 left it: no request_hash column.
        await using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "ALTER TABLE usage_records DROP COLUMN request_hash; PRAGMA user_version = 6;";
            command.ExecuteNonQuery();
        }

        await using var upgraded = SqliteStore.Open(path);
        await upgraded.AppendAsync([Record("acme:new-key") with { RequestHash = "abc:json" }]);

        Assert.Equal(Record("acme:old-key"), await upgraded.FindAsync("acme:old-key"));
        Assert.Equal("abc:json", (await upgraded.FindAsync("acme:new-key"))!.RequestHash);
    }

    [Fact]
    public async Task ReadCredits_AfterReopen_ReturnsGrantsExactlyInGrantOrder()
    {
        var path = Path.Combine(_directory, "credits.db");
        var granted = new DateTimeOffset(2026, 11, 1, 8, 0, 0, TimeSpan.Zero);
        await using (var first = SqliteStore.Open(path))
        {
            await first.AddCreditAsync(new CreditGrant("cr_2", "acme", 5m, granted.AddHours(1), null));
            await first.AddCreditAsync(new CreditGrant("cr_1", "acme", 100.0000001m, granted, granted.AddDays(30)));
        }

        await using var second = SqliteStore.Open(path);
        var grants = await second.ReadCreditsAsync();

        Assert.Equal(
            [new CreditGrant("cr_1", "acme", 100.0000001m, granted, granted.AddDays(30)), new CreditGrant("cr_2", "acme", 5m, granted.AddHours(1), null)],
            grants);
    }

    [Fact]
    public async Task Open_NewFile_UsesWriteAheadLog()
    {
        var path = Path.Combine(_directory, "wal.db");
        await using var store = SqliteStore.Open(path);
        await using var connection = new SqliteConnection($"Data Source={path}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";

        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Dispose_AfterAppends_CopiesEverythingBackAndEmptiesTheWal()
    {
        var path = Path.Combine(_directory, "checkpoint.db");
        var store = SqliteStore.Open(path);
        await store.AppendAsync(Enumerable.Range(0, 500).Select(i => Record($"req_{i}")).ToList());
        Assert.True(new FileInfo(path + "-wal").Length > 0);

        await store.DisposeAsync();

        // Closed cleanly, SQLite deletes the emptied WAL; either way nothing is left in it.
        Assert.False(File.Exists(path + "-wal") && new FileInfo(path + "-wal").Length > 0);
        await using var reopened = SqliteStore.Open(path);
        Assert.Equal(500, await reopened.CountAsync());
    }

    [Fact]
    public async Task Open_FileFromNewerBuild_ThrowsNamingTheFile()
    {
        var path = Path.Combine(_directory, "newer.db");
        await using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA user_version = 99";
            await command.ExecuteNonQueryAsync();
        }

        var error = Assert.Throws<InvalidDataException>(() => SqliteStore.Open(path));

        Assert.Contains("newer.db", error.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        Directory.Delete(_directory, recursive: true);
    }
}
