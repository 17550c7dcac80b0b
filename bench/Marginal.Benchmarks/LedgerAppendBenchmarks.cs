using BenchmarkDotNet.Attributes;
using Marginal.Core.Ledger;
using Marginal.Storage.Sqlite;

namespace Marginal.Benchmarks;

/// <summary>Records per second into the SQLite ledger, at each durability (the workload: <see cref="LedgerAppendWorkload"/>).</summary>
public class LedgerAppendBenchmarks : LedgerAppendWorkload
{
    private string _directory = "";

    public override IEnumerable<int> Batches => [100, 1000, 4096];

    [Params(SqliteDurability.Normal, SqliteDurability.Full)]
    public SqliteDurability Durability { get; set; }

    protected override Task<ILedgerStore> OpenStoreAsync()
    {
        _directory = Directory.CreateTempSubdirectory("marginal-bench-ledger-").FullName;
        return Task.FromResult<ILedgerStore>(SqliteStore.Open(Path.Combine(_directory, "ledger.db"), Durability));
    }

    protected override void DeleteStore() => Directory.Delete(_directory, recursive: true);
}
