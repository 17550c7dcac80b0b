using Marginal.Core.Ledger;
using Marginal.Storage.Postgres;
using Marginal.Testing.Services;
using Npgsql;

namespace Marginal.Storage.Tests.Postgres;

public sealed class PostgresRollupTests : UsageRollupConformance
{
    protected override async Task<string> CreateAsync() => await (await PostgresServer.Shared).CreateDatabaseAsync();

    protected override async Task<IMarginalStore> OpenAsync(string location) => await PostgresStore.OpenAsync(location);

    [Fact]
    public async Task OpenAsync_LedgerFromBeforeRollups_RollsUpItsRecordsOnce()
    {
        var database = await CreateAsync();
        var t0 = new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);
        UsageRecord[] records =
        [
            LedgerStoreConformance.Record("a", t0, 0.000123456789012345m) with { Levers = "cache=0.001, routing=0.5", RevenueUsd = 0.01m },
            LedgerStoreConformance.Record("b", t0.AddMinutes(70), null) with { Status = "upstream_error" },
            LedgerStoreConformance.Record("c", t0.AddMinutes(5), 0.002m) with { Levers = "cache=0.0005" },
            LedgerStoreConformance.Record("adj", t0.AddHours(3), 0.0001m) with { Kind = UsageRecordKinds.Adjustment, Adjusts = "a", Tenant = "other", RevenueUsd = 0.002m },
        ];
        await using (var store = await PostgresStore.OpenAsync(database))
        {
            await store.AppendAsync(records);
        }
        // Back to the schema of a build without rollups (step 3), records kept.
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            await using var downgrade = new NpgsqlCommand(
                "DROP TABLE usage_rollups, usage_rollup_levers, deferred_jobs, route_examples; ALTER TABLE usage_records DROP COLUMN request_hash; DELETE FROM marginal_schema; INSERT INTO marginal_schema (version) VALUES (3)", connection);
            await downgrade.ExecuteNonQueryAsync();
        }

        await using var upgraded = await PostgresStore.OpenAsync(database);
        var rollups = await upgraded.ReadRollupsAsync();

        Assert.Equal(Shape(UsageRollup.From(records)), Shape(rollups));
    }
}
