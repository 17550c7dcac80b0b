using System.Globalization;
using System.Text;
using System.Text.Json;
using Marginal.Core.Formats;

namespace Marginal.Economics.Reports.Formats;

/// <summary>
/// <c>marginal report</c>'s rows as CSV or JSON. Deterministic: the same rows give the same bytes. The terminal table
/// is the CLI's (it renders through the console library).
/// </summary>
public static class UsageReportFormats
{
    /// <summary>Milliseconds with one decimal, as every usage-report format writes them.</summary>
    public static string Ms(double value) => value.ToString("0.0", CultureInfo.InvariantCulture);

    /// <summary>One header line and one line per row, each ending in a newline; an unknown cost per 1M is empty.</summary>
    public static string Csv(IReadOnlyList<UsageReportRow> rows, string grouping)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var s = new StringBuilder();
        s.Append(grouping).Append(",requests,errors,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,reasoning_tokens,cost_usd,unpriced_requests,cost_per_million_tokens_usd,latency_p50_ms,latency_p95_ms\n");
        foreach (var r in rows)
        {
            s.AppendJoin(',', Core.Formats.Csv.Text(r.Group), N(r.Requests), N(r.Errors), N(r.InputTokens), N(r.CachedInputTokens), N(r.CacheWriteTokens), N(r.OutputTokens),
                N(r.ReasoningTokens), r.CostUsd.ToString(CultureInfo.InvariantCulture), N(r.UnpricedRequests),
                r.CostPerMillionTokensUsd?.ToString(CultureInfo.InvariantCulture) ?? "", Ms(r.LatencyP50Ms), Ms(r.LatencyP95Ms)).Append('\n');
        }
        return s.ToString();
    }

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>An indented object <c>{ "by", "rows": [...] }</c> and a newline; money as strings, an unknown cost per 1M as null.</summary>
    public static string Json(IReadOnlyList<UsageReportRow> rows, string grouping)
    {
        ArgumentNullException.ThrowIfNull(rows);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("by", grouping);
            json.WriteStartArray("rows");
            foreach (var r in rows)
            {
                json.WriteStartObject();
                json.WriteString("group", r.Group);
                json.WriteNumber("requests", r.Requests);
                json.WriteNumber("errors", r.Errors);
                json.WriteNumber("input_tokens", r.InputTokens);
                json.WriteNumber("cached_input_tokens", r.CachedInputTokens);
                json.WriteNumber("cache_write_tokens", r.CacheWriteTokens);
                json.WriteNumber("output_tokens", r.OutputTokens);
                json.WriteNumber("reasoning_tokens", r.ReasoningTokens);
                // Money as a string: a JSON number may be read back as a binary float and lose cents.
                json.WriteString("cost_usd", r.CostUsd.ToString(CultureInfo.InvariantCulture));
                json.WriteNumber("unpriced_requests", r.UnpricedRequests);
                if (r.CostPerMillionTokensUsd is { } perMillion)
                {
                    json.WriteString("cost_per_million_tokens_usd", perMillion.ToString(CultureInfo.InvariantCulture));
                }
                else
                {
                    json.WriteNull("cost_per_million_tokens_usd");
                }
                json.WriteNumber("latency_p50_ms", r.LatencyP50Ms);
                json.WriteNumber("latency_p95_ms", r.LatencyP95Ms);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }
}
