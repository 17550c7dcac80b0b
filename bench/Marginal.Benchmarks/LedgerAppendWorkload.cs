using BenchmarkDotNet.Attributes;
using Marginal.Core.Ledger;

namespace Marginal.Benchmarks;

/// <summary>
/// The append workload the ledger benchmarks share. <c>Store</c>: one caller appends 4,096 records per invocation in
/// batches of <see cref="Batch"/>, one transaction each (the writer's unit of work). <c>Writer</c>: 64 concurrent
/// requests each hand one record to the group-commit <see cref="LedgerWriter"/> and await its durability, as the
/// gateway does. Each reported time is per record (OperationsPerInvoke), so records/s = 1 s ÷ the mean. A derived
/// class says which store to open and which parameters to sweep.
/// </summary>
[MemoryDiagnoser]
public abstract class LedgerAppendWorkload
{
    private const int Concurrent = 64;
    private ILedgerStore _store = null!;
    private LedgerWriter _writer = null!;
    private UsageRecord[] _batch = [];
    private long _next;
    // Ids carry a per-run tag, so runs against the same (server) database never collide.
    private readonly string _run = Guid.NewGuid().ToString("N")[..8];

    [ParamsSource(nameof(Batches))]
    public int Batch { get; set; }

    /// <summary>The batch sizes swept.</summary>
    public virtual IEnumerable<int> Batches => [100, 4096];

    /// <summary>The store under test, opened empty or reused; disposed after the run.</summary>
    protected abstract Task<ILedgerStore> OpenStoreAsync();

    /// <summary>Removes whatever <see cref="OpenStoreAsync"/> created, after the store is disposed.</summary>
    protected virtual void DeleteStore()
    {
    }

    [GlobalSetup]
    public async Task Setup()
    {
        _store = await OpenStoreAsync();
        _writer = new LedgerWriter(_store);
        _batch = new UsageRecord[Batch];
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _writer.DisposeAsync();
        await _store.DisposeAsync();
        DeleteStore();
    }

    // A realistic record: every column filled, ids time-ordered like the gateway's.
    private UsageRecord Next() => new(
        Id: $"req_{_run}_{Interlocked.Increment(ref _next):D12}", Time: DateTimeOffset.UtcNow, Tenant: "acme", KeyId: "0123456789ab",
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
