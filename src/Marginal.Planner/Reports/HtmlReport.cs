using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Marginal.Planner.Reports;

/// <summary>
/// A self-contained HTML report of a plan: headline, tables and charts drawn by Chart.js 4.5.1 (MIT), whose minified
/// bundle is embedded in the planner assembly (Reports/chart.umd.min.js, from the npm package chart.js@4.5.1) and
/// inlined into the page, so the file opens anywhere with no network.
/// </summary>
public static class HtmlReport
{
    private const string ChartResource = "Marginal.Planner.Reports.chart.umd.min.js";

    private static readonly Lazy<string> ChartJs = new(() =>
    {
        using var stream = typeof(HtmlReport).Assembly.GetManifestResourceStream(ChartResource)
            ?? throw new InvalidOperationException($"{ChartResource} is not embedded in the planner assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static string Render(PlanSummary plan, IReadOnlyList<PlanHeadline> compare)
    {
        var months = plan.Months.Select(m => m.Month.ToString("yyyy-MM", CultureInfo.InvariantCulture)).ToList();
        var data = JsonSerializer.Serialize(new
        {
            months,
            revenue = plan.Months.Select(m => m.Revenue),
            inference = plan.Months.Select(m => m.InferenceCost),
            fixedCost = plan.Months.Select(m => m.FixedCost),
            variableCost = plan.Months.Select(m => m.VariableCost),
            ebitda = plan.Months.Select(m => m.Ebitda),
            cash = plan.Months.Select(m => m.Cash),
            costPerMillion = plan.Months.Select(m => m.CostPerMillion),
            utilisation = plan.Months.Select(m => m.Utilisation is { } u ? Math.Round(u * 100, 1) : (double?)null),
            economicDebt = plan.Months.Select(m => m.BalanceSheet.EconomicDebt),
            balanceSheetDebt = plan.Months.Select(m => m.BalanceSheet.BalanceSheetDebt),
            options = plan.Portfolio.Where(o => o.OutputTokensMillions > 0).Select(o => new { o.Name, tokens = o.MonthlyOutputTokens }),
            tornado = plan.Tornado.Select(t => new { input = t.Input, low = t.NpvLow, high = t.NpvHigh }),
            baseNpv = plan.Headline.NetPresentValue,
        }, Json);
        var h = plan.Headline;
        var html = new StringBuilder();
        html.Append(CultureInfo.InvariantCulture, $$"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Marginal plan: {{E(plan.Scenario)}}</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
            table{border-collapse:collapse;margin:8px 0 24px} td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
            td:first-child,th:first-child{text-align:left} .grid{display:grid;grid-template-columns:1fr 1fr;gap:24px}
            .kpi span{display:inline-block;margin:0 18px 8px 0} .kpi b{display:block;font-size:18px} canvas{max-height:320px}
            </style></head><body>
            <h1>Plan: {{E(plan.Scenario)}}</h1><p>{{E(plan.File)}}</p>
            <div class="kpi">
            <span>net present cost<b>{{Usd(h.NetPresentCost)}}</b></span><span>cost per 1M output tokens<b>{{Usd(h.CostPerMillion, 3)}}</b></span>
            <span>utilisation<b>{{Pct(h.Utilisation)}}</b></span><span>NPV<b>{{Usd(h.NetPresentValue)}}</b></span>
            <span>EBITDA<b>{{Usd(h.Ebitda)}}</b></span><span>capex<b>{{Usd(h.Capex)}}</b></span>
            <span>lowest cash<b>{{Usd(h.MinimumCash)}}</b></span><span>capital needed<b>{{Usd(h.CapitalNeeded)}}</b></span>
            </div>
            <p>{{E(h.BoundsLine())}}</p>
            <div class="grid">
            <div><h3>Revenue, inference cost and EBITDA by month</h3><canvas id="pnl"></canvas></div>
            <div><h3>Cash</h3><canvas id="cash"></canvas></div>
            <div><h3>Output tokens served by option (millions)</h3><canvas id="mix"></canvas></div>
            <div><h3>Cost per 1M output tokens and utilisation</h3><canvas id="unit"></canvas></div>
            <div><h3>Balance-sheet debt vs economic debt</h3><canvas id="debt"></canvas></div>
            <div><h3>Tornado: NPV with one input moved</h3><canvas id="tornado"></canvas></div>
            </div>
            <h2>Recommended portfolio</h2><table><tr><th>option</th><th>kind</th><th>supplier</th><th>accelerator</th><th>peak GPUs</th><th>mean GPUs in use</th><th>output tokens (M)</th><th>cost</th><th>per 1M</th><th>utilisation</th></tr>
            """);
        foreach (var o in plan.Portfolio)
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(o.Name)}</td><td>{o.Kind}</td><td>{E(o.Supplier)}</td><td>{E(o.Accelerator ?? "-")}</td><td>{o.PeakGpus:#,0.#}</td><td>{o.AverageGpusInUse:#,0.#}</td><td>{o.OutputTokensMillions:#,0}</td><td>{Usd(o.Cost)}</td><td>{(o.CostPerMillion is { } c ? Usd(c, 3) : "-")}</td><td>{Pct(o.Utilisation)}</td></tr>\n");
        }
        html.Append("</table><h2>Every option at full use</h2><table><tr><th>option</th><th>kind</th><th>accelerator</th><th>class</th><th>output tokens per GPU-hour</th><th>USD per GPU-hour</th><th>per 1M out</th></tr>\n");
        foreach (var e in plan.Options)
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(e.Name)}</td><td>{e.Kind}</td><td>{E(e.Accelerator ?? "-")}</td><td>{E(e.ServedClass)}</td><td>{(e.OutputTokensPerGpuHour is { } t ? t.ToString("#,0", CultureInfo.InvariantCulture) : "-")}</td><td>{(e.UsdPerGpuHour is { } hourly ? Usd(hourly, 3) : "-")}</td><td>{(e.CostPerMillionAtFullUse is { } c ? Usd(c, 3) : "cannot serve")}</td></tr>\n");
        }
        html.Append("</table><h2>Break-even utilisation, buy vs rent</h2><table><tr><th>owned</th><th>rented</th><th>F $/h</th><th>v $/h</th><th>R $/h</th><th>u* = F/(R−v)</th><th>planned</th></tr>\n");
        foreach (var b in plan.BreakEvens)
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(b.Owned)}</td><td>{E(b.Rented)}</td><td>{Usd(b.FixedPerHour, 3)}</td><td>{Usd(b.VariablePerHour, 3)}</td><td>{Usd(b.RentPerHour, 3)}</td><td>{(b.Utilisation is { } u ? Pct(u) : "never")}</td><td>{Pct(b.PlannedUtilisation)}</td></tr>\n");
        }
        html.Append("</table><h2>Shadow prices</h2><table><tr><th>what</th><th>value</th><th>unit</th><th>meaning</th></tr>\n");
        foreach (var s in plan.ShadowPrices)
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(s.Name)}</td><td>{Usd(s.Value)}</td><td>{E(s.Unit)}</td><td style=\"text-align:left\">{E(s.Meaning)}</td></tr>\n");
        }
        html.Append("</table>");
        if (compare.Count > 1)
        {
            html.Append("<h2>Comparison</h2><table><tr><th>scenario</th><th>net present cost</th><th>LP bound</th><th>gap</th><th>NPV</th><th>per 1M</th><th>utilisation</th><th>EBITDA</th><th>capex</th><th>lowest cash</th><th>peak economic debt</th></tr>\n");
            foreach (var c in compare)
            {
                html.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(c.Name)}</td><td>{Usd(c.NetPresentCost)}</td><td>{Usd(c.LpBound)}</td><td>{ReportFormat.Gap(c.LpGap)}</td><td>{Usd(c.NetPresentValue)}</td><td>{Usd(c.CostPerMillion, 3)}</td><td>{Pct(c.Utilisation)}</td><td>{Usd(c.Ebitda)}</td><td>{Usd(c.Capex)}</td><td>{Usd(c.MinimumCash)}</td><td>{Usd(c.PeakEconomicDebt)}</td></tr>\n");
            }
            html.Append("</table>");
        }
        html.Append("<h2>Monthly projection</h2><table><tr><th>month</th><th>output (M)</th><th>revenue</th><th>inference</th><th>gross margin</th><th>EBITDA</th><th>capex</th><th>cash</th><th>burn</th><th>utilisation</th><th>per 1M</th></tr>\n");
        foreach (var m in plan.Months)
        {
            html.Append(CultureInfo.InvariantCulture, $"<tr><td>{m.Month:yyyy-MM}</td><td>{m.OutputTokens:#,0}</td><td>{Usd(m.Revenue)}</td><td>{Usd(m.InferenceCost)}</td><td>{Usd(m.GrossMargin)}</td><td>{Usd(m.Ebitda)}</td><td>{Usd(m.Capex)}</td><td>{Usd(m.Cash)}</td><td>{Usd(m.Burn)}</td><td>{Pct(m.Utilisation)}</td><td>{Usd(m.CostPerMillion, 3)}</td></tr>\n");
        }
        html.Append("</table>\n<script>").Append(ChartJs.Value).Append("</script>\n<script>\nconst d = ").Append(data).Append(";\n").Append(ChartScript).Append("</script></body></html>\n");
        return html.ToString();
    }

    // Draws the charts from `d`; every series comes from the plan's JSON above.
    private const string ChartScript = """
        const line = (label, data, color, axis) => ({ type: 'line', label, data, borderColor: color, backgroundColor: color, yAxisID: axis || 'y', pointRadius: 0 });
        new Chart(document.getElementById('pnl'), { type: 'bar', data: { labels: d.months, datasets: [
          line('revenue', d.revenue, '#2a7'), { label: 'fixed cost', data: d.fixed_cost, backgroundColor: '#c66', stack: 'c' },
          { label: 'variable cost', data: d.variable_cost, backgroundColor: '#e99', stack: 'c' }, line('EBITDA', d.ebitda, '#246') ] } });
        new Chart(document.getElementById('cash'), { type: 'line', data: { labels: d.months, datasets: [ line('cash', d.cash, '#246') ] } });
        const palette = ['#246', '#2a7', '#c66', '#e90', '#86c', '#4bb', '#999', '#a52', '#5a5', '#c4a'];
        new Chart(document.getElementById('mix'), { type: 'bar', data: { labels: d.months, datasets: d.options.map((o, i) => ({ label: o.name, data: o.tokens, backgroundColor: palette[i % palette.length] })) },
          options: { scales: { x: { stacked: true }, y: { stacked: true } } } });
        new Chart(document.getElementById('unit'), { type: 'line', data: { labels: d.months, datasets: [ line('$ per 1M output tokens', d.cost_per_million, '#c66'), line('utilisation %', d.utilisation, '#246', 'u') ] },
          options: { scales: { u: { position: 'right', min: 0, max: 100 } } } });
        new Chart(document.getElementById('debt'), { type: 'line', data: { labels: d.months, datasets: [ line('balance-sheet debt', d.balance_sheet_debt, '#246'), line('economic debt', d.economic_debt, '#c66') ] } });
        new Chart(document.getElementById('tornado'), { type: 'bar', data: { labels: d.tornado.map(t => t.input), datasets: [
          { label: 'low', data: d.tornado.map(t => [d.base_npv, t.low]), backgroundColor: '#c66' }, { label: 'high', data: d.tornado.map(t => [d.base_npv, t.high]), backgroundColor: '#2a7' } ] },
          options: { indexAxis: 'y', scales: { y: { stacked: true } } } });
        """;

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private static string Usd(decimal value, int decimals = 0) => ReportFormat.Usd(value, decimals);

    private static string Pct(double? value) => ReportFormat.Pct(value);
}
