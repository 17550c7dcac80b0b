using BenchmarkDotNet.Attributes;
using Marginal.Core.Ledger;
using Marginal.Storage;
using Marginal.Storage.Postgres;
using Marginal.Storage.Sqlite;

namespace Marginal.Benchmarks;

/// <summary>
/// Records per second into SQLite (embedded) against PostgreSQL (cluster), the same records and batches. PostgreSQL is
/// the server named by <c>MARGINAL_BENCH_POSTGRES</c> (an Npgsql connection string; ids carry a per-run tag, so runs
/// against the same database never collide). <c>Store</c> appends 4,096 records per invocation in
/// batches of <see cref="Batch"/>; <c>Writer</c> has 64 concurrent requests hand one record each to the group-commit
/// <see cref="LedgerWriter"/>. Times are per record.
/// </summary>
[MemoryDiagnoser]
public class LedgerStoreComparisonBenchmarks
{
    private const int Concurrent = 64;
    private string _directory = "";
    private IMarginalStore _store = null!;
    private LedgerWriter _writer = null!;
    private UsageRecord[] _batch = [];
    private long _next;
    private string _run = "";

    [Params("sqlite", "postgres")]
    public string Kind { get; set; } = "sqlite";

    [Params(100, 4096)]
    public int Batch { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        _directory = Directory.CreateTempSubdirectory("marginal-bench-stores-").FullName;
        _run = Guid.NewGuid().ToString("N")[..8];
        _store = Kind == "sqlite"
            ? SqliteStore.Open(Path.Combine(_directory, "ledger.db"))
            : await PostgresStore.OpenAsync(Environment.GetEnvironmentVariable("MARGINAL_BENCH_POSTGRES")
                ?? throw new InvalidOperationException("set MARGINAL_BENCH_POSTGRES to an Npgsql connection string (Host=127.0.0.1;Port=…;Username=…;Database=…)"));
        _writer = new LedgerWriter(_store);
        _batch = new UsageRecord[Batch];
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _writer.DisposeAsync();
        await _store.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private UsageRecord Next() => new(
        Id: $"req_{_run}_{Interlocked.Increment(ref _next):D12}", Time: DateTimeOffset.UtcNow, Tenant: "acme", KeyId: "0123456789ab",
        RequestedModel: "gpt-4o-mini", ServedModel: "gpt-4o-mini", Provider: "openai", CapacitySource: "api", Status: "ok", Streamed: true,
        InputTokens: 1234, CachedInputTokens: 1024, CacheWriteTokens: 0, OutputTokens: 321, ReasoningTokens: 0, UsageSource: "reported",
        LatencyMs: 812.5, TimeToFirstTokenMs: 95.2, CostUsd: 0.000321456m, MarginalCostUsd: 0.000321456m, RevenueUsd: null,
        CacheOutcome: "miss", RouteReason: "explicit", Levers: "", SavingsUsd: null, Attempts: 1);

    [Benchmark(OperationsPerInvoke = 4096)]
    public async Task Store()
    {
        for (var done = 0; done < 4096; done += Batch)
        {
            for (var i = 0; i < Batch; i++)
            {
                _batch[i] = Next();
            }
            await _store.AppendAsync(_batch);
        }
    }

    [Benchmark(OperationsPerInvoke = 4096)]
    public async Task Writer()
    {
        var workers = new Task[Concurrent];
        for (var w = 0; w < Concurrent; w++)
        {
            workers[w] = Task.Run(async () =>
            {
                for (var i = 0; i < 4096 / Concurrent; i++)
                {
                    await _writer.AppendAsync(Next());
                }
            });
        }
        await Task.WhenAll(workers);
    }
}
