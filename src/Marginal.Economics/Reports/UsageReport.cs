using Marginal.Core.Ledger;

namespace Marginal.Economics.Reports;

/// <summary>What a usage report groups by.</summary>
public enum ReportGrouping
{
    Tenant,
    Model,
    Provider,
    Key,
}

/// <summary>
/// One row of a usage report. Cost per 1M tokens = cost ÷ (input + output tokens) × 1,000,000, over priced requests
/// only, so an unpriced model neither lowers nor raises it. Latency percentiles are nearest-rank over every request.
/// </summary>
public sealed record UsageReportRow(
    string Group,
    long Requests,
    long Errors,
    long InputTokens,
    long CachedInputTokens,
    long CacheWriteTokens,
    long OutputTokens,
    long ReasoningTokens,
    decimal CostUsd,
    long UnpricedRequests,
    decimal? CostPerMillionTokensUsd,
    double LatencyP50Ms,
    double LatencyP95Ms);

/// <summary>Turns ledger records into report rows. Pure; the same records give the same rows.</summary>
public static class UsageReport
{
    public const string TotalGroup = "(total)";

    /// <summary>
    /// One row per group, largest cost first (then name), and a <see cref="TotalGroup"/> row last. Only successful and
    /// broken-but-billed requests carry tokens; every request counts in <see cref="UsageReportRow.Requests"/>.
    /// </summary>
    public static IReadOnlyList<UsageReportRow> Summarise(IEnumerable<UsageRecord> records, ReportGrouping by)
    {
        ArgumentNullException.ThrowIfNull(records);
        var groups = new Dictionary<string, Accumulator>(StringComparer.Ordinal);
        var total = new Accumulator(TotalGroup);
        foreach (var record in records)
        {
            var name = KeyOf(record, by);
            if (!groups.TryGetValue(name, out var group))
            {
                groups[name] = group = new Accumulator(name);
            }
            group.Add(record);
            total.Add(record);
        }
        var rows = groups.Values.Select(g => g.ToRow()).OrderByDescending(r => r.CostUsd).ThenBy(r => r.Group, StringComparer.Ordinal).ToList();
        rows.Add(total.ToRow());
        return rows;
    }

    private static string KeyOf(UsageRecord record, ReportGrouping by) => by switch
    {
        ReportGrouping.Tenant => record.Tenant,
        ReportGrouping.Model => record.ServedModel ?? $"({record.RequestedModel}, not served)",
        ReportGrouping.Provider => record.Provider ?? "(none)",
        _ => record.KeyId,
    };

    /// <summary>The nearest-rank percentile <paramref name="p"/> (0–100) of sorted values; 0 for none.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Count == 0)
        {
            return 0;
        }
        var rank = (int)Math.Ceiling(p / 100 * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    private sealed class Accumulator(string name)
    {
        private readonly List<double> _latencies = [];
        private long _requests, _errors, _input, _cached, _writes, _output, _reasoning, _unpriced, _pricedTokens;
        private decimal _cost;

        public void Add(UsageRecord r)
        {
            _requests++;
            if (r.Status != "ok")
            {
                _errors++;
            }
            _input += r.InputTokens;
            _cached += r.CachedInputTokens;
            _writes += r.CacheWriteTokens;
            _output += r.OutputTokens;
            _reasoning += r.ReasoningTokens;
            if (r.CostUsd is { } cost)
            {
                _cost += cost;
                _pricedTokens += r.InputTokens + r.OutputTokens;
            }
            else if (r.InputTokens + r.OutputTokens > 0)
            {
                _unpriced++;
            }
            _latencies.Add(r.LatencyMs);
        }

        public UsageReportRow ToRow()
        {
            _latencies.Sort();
            return new UsageReportRow(name, _requests, _errors, _input, _cached, _writes, _output, _reasoning, _cost, _unpriced,
                _pricedTokens == 0 ? null : _cost / _pricedTokens * 1_000_000m,
                Percentile(_latencies, 50), Percentile(_latencies, 95));
        }
    }
}
