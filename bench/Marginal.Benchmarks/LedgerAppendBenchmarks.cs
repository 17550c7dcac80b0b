using BenchmarkDotNet.Attributes;
using Marginal.Core.Ledger;
using Marginal.Storage.Sqlite;

namespace Marginal.Benchmarks;

/// <summary>
/// Records per second into the SQLite ledger. <c>Store</c>: one caller appends a batch of <see cref="Batch"/> records
/// in one transaction (the writer's unit of work). <c>Writer</c>: 64 concurrent requests each hand one record to the
/// group-commit <see cref="LedgerWriter"/> and await its durability, as the gateway does. Each reported time is per
/// record (OperationsPerInvoke), so records/s = 1 s ÷ the mean.
/// </summary>
[MemoryDiagnoser]
public class LedgerAppendBenchmarks
{
    private const int Concurrent = 64;
    private string _directory = "";
    private SqliteStore _store = null!;
    private LedgerWriter _writer = null!;
    private UsageRecord[] _batch = [];
    private long _next;

    [Params(100, 1000, 4096)]
    public int Batch { get; set; }

    [Params(SqliteDurability.Normal, SqliteDurability.Full)]
    public SqliteDurability Durability { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("marginal-bench-ledger-").FullName;
        _store = SqliteStore.Open(Path.Combine(_directory, "ledger.db"), Durability);
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

    // A realistic record: every column filled, ids time-ordered like the gateway's.
    private UsageRecord Next() => new(
        Id: $"req_{Interlocked.Increment(ref _next):D12}", Time: DateTimeOffset.UtcNow, Tenant: "acme", KeyId: "0123456789ab",
        RequestedModel: "gpt-4o-mini", ServedModel: "gpt-4o-mini", Provider: "openai", CapacitySource: "api", Status: "ok", Streamed: true,
        InputTokens: 1234, CachedInputTokens: 1024, CacheWriteTokens: 0, OutputTokens: 321, ReasoningTokens: 0, UsageSource: "reported",
        LatencyMs: 812.5, TimeToFirstTokenMs: 95.2, CostUsd: 0.000321456m, MarginalCostUsd: 0.000321456m, RevenueUsd: null,
        CacheOutcome: "miss", RouteReason: "explicit", Levers: "", SavingsUsd: null, Attempts: 1);

    [Benchmark(Baseline = true, OperationsPerInvoke = 4096)]
    public async Task Store()
    {
        // 4096 records per invocation whatever the batch, so the per-record times compare.
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
        // 64 requests at a time hand in 4096 records one by one; batches form from whatever queued during the last commit.
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
