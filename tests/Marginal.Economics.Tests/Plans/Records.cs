using Marginal.Core.Ledger;

namespace Marginal.Economics.Tests.Plans;

/// <summary>Ledger records for the pricing examples of docs/economics.md.</summary>
internal static class Records
{
    public static readonly DateTimeOffset November = new(2026, 11, 2, 9, 0, 0, TimeSpan.Zero);

    public static UsageRecord Usage(long input, long output = 0, long cached = 0, decimal? cost = null, string model = "gpt-test", string tags = "",
        string tenant = "acme", DateTimeOffset? time = null, string? id = null, string requested = "gpt-test", decimal? revenue = null) =>
        new(id ?? $"req_{Guid.NewGuid():N}", time ?? November, tenant, "key1", requested, model, "primary", "api", "ok", false,
            input, cached, 0, output, 0, "reported", 10, null, cost, cost, revenue, null, "explicit", "", null, 1, Tags: tags);
}
