using Marginal.Core.Ledger;
using Marginal.Storage.Sqlite;

namespace Marginal.Benchmarks;

/// <summary>
/// The dashboard benchmarks' ledger: <c>records</c> usage records spread over the 30 days before now (4 tenants × 4 models ×
/// 2 route reasons × 3 cache outcomes, an owned share, levers on cache hits, revenue on half), appended 10,000 per batch.
/// </summary>
internal static class DashboardLedger
{
    private static readonly string[] Tenants = ["acme", "globex", "initech", "umbrella"];
    private static readonly (string Model, string Provider, string Capacity)[] Models =
        [("gpt-4o-mini", "openai", "api"), ("gpt-4o", "openai", "api"), ("claude-haiku", "anthropic", "api"), ("llama-owned", "local", "owned")];
    private static readonly string[] Routes = ["explicit", "policy"];
    private static readonly string[] CacheOutcomes = ["miss", "hit-exact", "hit-semantic"];

    public static async Task SeedAsync(string path, int records, DateTimeOffset now)
    {
        await using var store = SqliteStore.Open(path);
        await SeedAsync(store, records, now);
    }

    public static async Task SeedAsync(ILedgerStore store, int records, DateTimeOffset now)
    {
        var start = now.AddDays(-30);
        var step = TimeSpan.FromDays(30) / records;
        var batch = new List<UsageRecord>(10_000);
        for (var i = 0; i < records; i++)
        {
            var (model, provider, capacity) = Models[i % Models.Length];
            var cache = CacheOutcomes[i / 7 % CacheOutcomes.Length];
            var cost = cache == "miss" ? 0.0001m + i % 97 * 0.000001m : 0m;
            batch.Add(new UsageRecord(
                Id: $"req_{i:D9}", Time: start + step * i, Tenant: Tenants[i / 3 % Tenants.Length], KeyId: "k", RequestedModel: model, ServedModel: model,
                Provider: provider, CapacitySource: capacity, Status: i % 50 == 0 ? "upstream_error" : "ok", Streamed: i % 2 == 0,
                InputTokens: 500 + i % 1000, CachedInputTokens: 0, CacheWriteTokens: 0, OutputTokens: 100 + i % 300, ReasoningTokens: 0,
                UsageSource: "reported", LatencyMs: 200, TimeToFirstTokenMs: null, CostUsd: cost, MarginalCostUsd: capacity == "owned" ? cost / 5 : cost,
                RevenueUsd: i % 2 == 0 ? 0.0004m : null, CacheOutcome: cache, RouteReason: Routes[i / 11 % Routes.Length],
                Levers: cache == "miss" ? "" : "cache=0.0001", SavingsUsd: cache == "miss" ? null : 0.0001m, Attempts: 1));
            if (batch.Count == batch.Capacity)
            {
                await store.AppendAsync(batch);
                batch.Clear();
            }
        }
        if (batch.Count > 0)
        {
            await store.AppendAsync(batch);
        }
    }
}
