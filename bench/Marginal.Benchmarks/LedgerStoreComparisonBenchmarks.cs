using BenchmarkDotNet.Attributes;
using Marginal.Core.Ledger;
using Marginal.Storage.Postgres;
using Marginal.Storage.Sqlite;

namespace Marginal.Benchmarks;

/// <summary>
/// Records per second into SQLite (embedded) against PostgreSQL (cluster), the same records and batches (the workload:
/// <see cref="LedgerAppendWorkload"/>). PostgreSQL is the server named by <c>MARGINAL_BENCH_POSTGRES</c> (an Npgsql
/// connection string).
/// </summary>
public class LedgerStoreComparisonBenchmarks : LedgerAppendWorkload
{
    private string _directory = "";

    [Params("sqlite", "postgres")]
    public string Kind { get; set; } = "sqlite";

    protected override async Task<ILedgerStore> OpenStoreAsync()
    {
        _directory = Directory.CreateTempSubdirectory("marginal-bench-stores-").FullName;
        return Kind == "sqlite"
            ? SqliteStore.Open(Path.Combine(_directory, "ledger.db"))
            : await PostgresStore.OpenAsync(Environment.GetEnvironmentVariable("MARGINAL_BENCH_POSTGRES")
                ?? throw new InvalidOperationException("set MARGINAL_BENCH_POSTGRES to an Npgsql connection string (Host=127.0.0.1;Port=…;Username=…;Database=…)"));
    }

    protected override void DeleteStore() => Directory.Delete(_directory, recursive: true);
}
