using System.Globalization;
using System.Text;
using System.Text.Json;
using Marginal.Economics.Invoices;

namespace Marginal.Economics.Reports.Formats;

/// <summary>Writes an <see cref="Invoice"/> as Markdown, JSON or CSV. Deterministic: the same invoice gives the same bytes.</summary>
public static class InvoiceFormats
{
    public static readonly string[] Names = ["md", "json", "csv"];

    public static string Write(Invoice invoice, string format) => format switch
    {
        "json" => Json(invoice),
        "csv" => Csv(invoice),
        _ => Markdown(invoice),
    };

    // Six decimals: exact to a millionth of a dollar, stable across runs and machines.
    // A value that rounds to zero is written as 0.000000, never -0.000000 (decimal keeps the sign of a zero).
    private static string Usd(decimal value) => Math.Round(value, 6, MidpointRounding.ToEven) is var rounded && rounded == 0m
        ? "0.000000"
        : rounded.ToString("0.000000", CultureInfo.InvariantCulture);

    /// <summary>A deduction, written with its minus sign unless it is zero.</summary>
    private static string Minus(decimal value) => Usd(-value);

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Markdown(Invoice i)
    {
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"# Invoice {i.Tenant} {i.Month}\n\nPlan: {i.Plan}\n\n");
        s.Append("| model | requests | input | cached | output | list USD | free USD | tiers USD | usage USD |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        foreach (var m in i.Models)
        {
            s.Append(CultureInfo.InvariantCulture, $"| {m.Model} | {N(m.Requests)} | {N(m.InputTokens)} | {N(m.CachedInputTokens)} | {N(m.OutputTokens)} | {Usd(m.ListUsd)} | {Minus(m.FreeUsd)} | {Minus(m.TierUsd)} | {Usd(m.UsageUsd)} |\n");
        }
        if (i.TierSummary is { } tiers)
        {
            s.Append(CultureInfo.InvariantCulture, $"\nTiers: {tiers}\n");
        }
        Items(s, "Package", i.Package is { } p ? [p] : []);
        Items(s, "Premium features", i.Surcharges);
        Items(s, "Outcomes", i.Outcomes);
        s.Append("\n| line | USD |\n| --- | ---: |\n");
        s.Append(CultureInfo.InvariantCulture, $"| subtotal | {Usd(i.SubtotalUsd)} |\n");
        s.Append(CultureInfo.InvariantCulture, $"| discount {Math.Round(i.DiscountRate * 100, 4).ToString("0.####", CultureInfo.InvariantCulture)}% | {Minus(i.DiscountUsd)} |\n");
        if (i.CommitmentUsd > 0)
        {
            s.Append(CultureInfo.InvariantCulture, $"| commitment {Usd(i.CommitmentUsd)}: true-up | {Usd(i.TrueUpUsd)} |\n");
        }
        foreach (var a in i.Adjustments)
        {
            s.Append(CultureInfo.InvariantCulture, $"| adjustment {a.Id} ({a.Adjusts}): {a.Reason} | {Usd(a.Usd)} |\n");
        }
        s.Append(CultureInfo.InvariantCulture, $"| **total** | **{Usd(i.TotalUsd)}** |\n");
        s.Append(CultureInfo.InvariantCulture, $"| credits applied | {Minus(i.CreditsAppliedUsd)} |\n");
        s.Append(CultureInfo.InvariantCulture, $"| **amount due** | **{Usd(i.AmountDueUsd)}** |\n");
        s.Append(CultureInfo.InvariantCulture, $"\nCost to serve: {Usd(i.CostUsd)} USD; margin: {Usd(i.MarginUsd)} USD.\n");
        return s.ToString();
    }

    private static void Items(StringBuilder s, string title, IReadOnlyList<InvoiceItemLine> lines)
    {
        if (lines.Count == 0)
        {
            return;
        }
        s.Append(CultureInfo.InvariantCulture, $"\n{title}:\n\n| item | count | unit USD | USD |\n| --- | ---: | ---: | ---: |\n");
        foreach (var l in lines)
        {
            s.Append(CultureInfo.InvariantCulture, $"| {l.Name} | {N(l.Count)} | {Usd(l.UnitUsd)} | {Usd(l.Usd)} |\n");
        }
    }

    private static string Csv(Invoice i)
    {
        // One row per line item: section, name, count, amount. Money as invariant decimals.
        var s = new StringBuilder("section,item,count,input_tokens,cached_input_tokens,output_tokens,usd\n");
        void Row(string section, string item, long count, string usd, long input = 0, long cached = 0, long output = 0) =>
            s.Append(CultureInfo.InvariantCulture, $"{section},{Core.Formats.Csv.Text(item)},{N(count)},{N(input)},{N(cached)},{N(output)},{usd}\n");
        foreach (var m in i.Models)
        {
            Row("usage", m.Model, m.Requests, Usd(m.UsageUsd), m.InputTokens, m.CachedInputTokens, m.OutputTokens);
        }
        if (i.Package is { } p)
        {
            Row("package", p.Name, p.Count, Usd(p.Usd));
        }
        foreach (var l in i.Surcharges)
        {
            Row("surcharge", l.Name, l.Count, Usd(l.Usd));
        }
        foreach (var l in i.Outcomes)
        {
            Row("outcome", l.Name, l.Count, Usd(l.Usd));
        }
        Row("subtotal", "", 0, Usd(i.SubtotalUsd));
        Row("discount", "", 0, Minus(i.DiscountUsd));
        Row("true_up", "", 0, Usd(i.TrueUpUsd));
        foreach (var a in i.Adjustments)
        {
            Row("adjustment", $"{a.Id} {a.Reason}", 1, Usd(a.Usd));
        }
        Row("total", "", 0, Usd(i.TotalUsd));
        Row("credits", "", 0, Minus(i.CreditsAppliedUsd));
        Row("amount_due", "", 0, Usd(i.AmountDueUsd));
        return s.ToString();
    }

    private static string Json(Invoice i)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            // Money as strings: a JSON number may be read back as a binary float and lose cents.
            json.WriteStartObject();
            json.WriteString("tenant", i.Tenant);
            json.WriteString("month", i.Month);
            json.WriteString("plan", i.Plan);
            json.WriteStartArray("models");
            foreach (var m in i.Models)
            {
                json.WriteStartObject();
                json.WriteString("model", m.Model);
                json.WriteNumber("requests", m.Requests);
                json.WriteNumber("input_tokens", m.InputTokens);
                json.WriteNumber("cached_input_tokens", m.CachedInputTokens);
                json.WriteNumber("output_tokens", m.OutputTokens);
                json.WriteString("list_usd", Usd(m.ListUsd));
                json.WriteString("free_usd", Usd(m.FreeUsd));
                json.WriteString("tier_usd", Usd(m.TierUsd));
                json.WriteString("usage_usd", Usd(m.UsageUsd));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteString("tiers", i.TierSummary);
            JsonItems(json, "package", i.Package is { } p ? [p] : []);
            JsonItems(json, "surcharges", i.Surcharges);
            JsonItems(json, "outcomes", i.Outcomes);
            json.WriteString("subtotal_usd", Usd(i.SubtotalUsd));
            json.WriteString("discount_rate", i.DiscountRate.ToString(CultureInfo.InvariantCulture));
            json.WriteString("discount_usd", Usd(i.DiscountUsd));
            json.WriteString("commitment_usd", Usd(i.CommitmentUsd));
            json.WriteString("true_up_usd", Usd(i.TrueUpUsd));
            json.WriteStartArray("adjustments");
            foreach (var a in i.Adjustments)
            {
                json.WriteStartObject();
                json.WriteString("id", a.Id);
                json.WriteString("adjusts", a.Adjusts);
                json.WriteString("reason", a.Reason);
                json.WriteString("usd", Usd(a.Usd));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteString("total_usd", Usd(i.TotalUsd));
            json.WriteString("credits_applied_usd", Usd(i.CreditsAppliedUsd));
            json.WriteString("amount_due_usd", Usd(i.AmountDueUsd));
            json.WriteString("cost_usd", Usd(i.CostUsd));
            json.WriteString("margin_usd", Usd(i.MarginUsd));
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    private static void JsonItems(Utf8JsonWriter json, string name, IReadOnlyList<InvoiceItemLine> lines)
    {
        json.WriteStartArray(name);
        foreach (var l in lines)
        {
            json.WriteStartObject();
            json.WriteString("item", l.Name);
            json.WriteNumber("count", l.Count);
            json.WriteString("unit_usd", Usd(l.UnitUsd));
            json.WriteString("usd", Usd(l.Usd));
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }
}
