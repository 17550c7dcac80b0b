using Marginal.Core.Ledger;
using Marginal.Economics.Reports;

namespace Marginal.Economics.Tests.Reports;

public sealed class UsageReportTests
{
    private static UsageRecord Record(string tenant, string? model, long input, long output, decimal? cost, double latency, string status = "ok") => new(
        Id: Guid.NewGuid().ToString("N"), Time: DateTimeOffset.UnixEpoch, Tenant: tenant, KeyId: "k", RequestedModel: model ?? "m", ServedModel: model,
        Provider: model is null ? null : "p", CapacitySource: "api", Status: status, Streamed: false, InputTokens: input, CachedInputTokens: 0,
        CacheWriteTokens: 0, OutputTokens: output, ReasoningTokens: 0, UsageSource: "reported", LatencyMs: latency, TimeToFirstTokenMs: null,
        CostUsd: cost, MarginalCostUsd: cost, RevenueUsd: null, CacheOutcome: null, RouteReason: null, Levers: "", SavingsUsd: null, Attempts: 1);

    [Fact]
    public void Summarise_ByTenant_SumsCostAndTokensAndOrdersByCost()
    {
        UsageRecord[] records =
        [
            Record("acme", "a", 1000, 500, 0.01m, 100),
            Record("acme", "a", 3000, 500, 0.03m, 300),
            Record("globex", "a", 100, 100, 0.5m, 50),
        ];

        var rows = UsageReport.Summarise(records, ReportGrouping.Tenant);

        Assert.Equal(["globex", "acme", UsageReport.TotalGroup], rows.Select(r => r.Group));
        var acme = rows[1];
        Assert.Equal((2L, 4000L, 1000L, 0.04m), (acme.Requests, acme.InputTokens, acme.OutputTokens, acme.CostUsd));
        // 0.04 USD over 5,000 tokens = 8 USD per 1M tokens
        Assert.Equal(8m, acme.CostPerMillionTokensUsd);
        Assert.Equal(0.54m, rows[^1].CostUsd);
    }

    [Fact]
    public void Summarise_UnpricedRecords_CountedButLeftOutOfCostPerToken()
    {
        UsageRecord[] records = [Record("t", "priced", 500, 500, 0.002m, 10), Record("t", "free", 9000, 1000, null, 10)];

        var total = UsageReport.Summarise(records, ReportGrouping.Tenant)[^1];

        Assert.Equal(1, total.UnpricedRequests);
        Assert.Equal(2m, total.CostPerMillionTokensUsd);
        Assert.Equal(11000, total.InputTokens + total.OutputTokens);
    }

    [Fact]
    public void Summarise_ByModel_NamesFailedUnservedRequestsAndCountsErrors()
    {
        UsageRecord[] records = [Record("t", null, 0, 0, null, 5, status: "model_not_found"), Record("t", "a", 1, 1, 0m, 5)];

        var rows = UsageReport.Summarise(records, ReportGrouping.Model);

        Assert.Contains(rows, r => r.Group == "(m, not served)" && r.Errors == 1);
        Assert.Null(rows.Single(r => r.Group == "(m, not served)").CostPerMillionTokensUsd);
    }

    [Fact]
    public void Percentile_TwentyValues_NearestRank()
    {
        var sorted = Enumerable.Range(1, 20).Select(i => (double)i).ToList();

        Assert.Equal(10, UsageReport.Percentile(sorted, 50));
        Assert.Equal(19, UsageReport.Percentile(sorted, 95));
        Assert.Equal(0, UsageReport.Percentile([], 95));
    }
}
