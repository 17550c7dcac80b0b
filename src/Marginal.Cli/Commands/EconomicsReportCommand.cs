using System.CommandLine;
using System.Globalization;
using Marginal.Economics.Reports.Formats;
using Marginal.Economics.UnitEconomics;
using Marginal.Gateway.Configuration;
using Marginal.Server.Dashboard;
using Marginal.Storage;
using Marginal.Storage.Opening;
using Spectre.Console;

namespace Marginal.Cli.Commands;

/// <summary>
/// <c>marginal report economics</c>: the dashboard's figures on the terminal (table, JSON or CSV), and with
/// <c>--html FILE</c> the dashboard as one self-contained HTML file.
/// </summary>
internal static class EconomicsReportCommand
{
    private static readonly string[] Groupings = ["tenant", "model", "provider", "capacity", "route"];
    private static readonly string[] Formats = ["table", "csv", "json"];

    public static Command Create()
    {
        var config = ConfigFile.Option();
        var since = new Option<string?>("--since") { Description = $"Start of the window (inclusive): {CliTime.Allowed}. Default: the first record." };
        var until = new Option<string?>("--until") { Description = "End of the window (exclusive), same forms. Default: now." };
        var by = new Option<string>("--by") { Description = "Break down by tenant, model, provider, capacity or route.", DefaultValueFactory = _ => "model" };
        var format = new Option<string>("--format") { Description = "table, csv or json.", DefaultValueFactory = _ => "table" };
        var html = new Option<FileInfo?>("--html") { Description = "Also write the report as one self-contained HTML file with charts." };
        var command = new Command("economics", "Unit economics from the ledger: cost, revenue, margin, utilisation, savings by lever, the marginal cost of the next 1M tokens.")
        {
            config, since, until, by, format, html,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var now = TimeProvider.System.GetUtcNow();
                var from = CliTime.Option("report economics", "--since", parse.GetValue(since), now);
                var to = CliTime.Option("report economics", "--until", parse.GetValue(until), now);
                var grouping = Choice("--by", parse.GetValue(by)!, Groupings);
                var output = Choice("--format", parse.GetValue(format)!, Formats);
                var (loaded, _) = ConfigFile.Load(parse.GetValue(config));
                await using var store = await MarginalStores.OpenAsync(loaded.Storage, cancellationToken: cancellationToken);
                var report = await EconomicsInputs.ReportBuilder(loaded).BuildAsync(store, from, to, Enum.Parse<EconomicsGrouping>(grouping, ignoreCase: true), now, cancellationToken);
                switch (output)
                {
                    case "csv": Console.Out.Write(EconomicsReportFormats.Csv(report)); break;
                    case "json": Console.Out.Write(EconomicsReportFormats.Json(report) + "\n"); break;
                    default: WriteTable(report); break;
                }
                if (parse.GetValue(html) is { } file)
                {
                    await WriteHtmlAsync(file.FullName, report, cancellationToken);
                    await Console.Error.WriteLineAsync($"HTML report: {file.FullName}");
                }
                return 0;
            }
            catch (Exception error) when (error is ConfigException or StoreOpenException)
            {
                await Console.Error.WriteLineAsync(error.Message);
                return MarginalCommand.BadInput;
            }
        });
        return command;
    }

    /// <summary>Writes <paramref name="report"/> as one HTML file; a file that cannot be written is a <see cref="ConfigException"/>.</summary>
    public static async Task WriteHtmlAsync(string path, EconomicsReport report, CancellationToken cancellationToken)
    {
        try
        {
            await File.WriteAllTextAsync(path, EconomicsReportFormats.Html(report), cancellationToken);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"marginal report economics: --html: cannot write '{path}': {error.Message}");
        }
    }

    private static string Choice(string name, string value, string[] allowed) =>
        allowed.Contains(value) ? value : throw new ConfigException($"marginal report economics: {name}: '{value}' is not allowed (allowed: {string.Join(", ", allowed)})");

    private static string Usd(decimal? value, string none) => value is { } v ? Math.Round(v, 6).ToString("0.######", CultureInfo.InvariantCulture) : none;

    private static string Pct(decimal? value, string none) => value is { } v ? (v * 100m).ToString("0.0", CultureInfo.InvariantCulture) + "%" : none;

    private static void WriteTable(EconomicsReport r)
    {
        var t = r.Total;
        var head = new Table().Title($"[bold]unit economics[/] ({r.Since:u} – {r.Until:u})").AddColumn("figure").AddColumn(new TableColumn("value").RightAligned());
        head.AddRow("requests", t.Requests.ToString("N0", CultureInfo.InvariantCulture));
        head.AddRow("tokens in / out", $"{t.InputTokens.ToString("N0", CultureInfo.InvariantCulture)} / {t.OutputTokens.ToString("N0", CultureInfo.InvariantCulture)}");
        head.AddRow("cost, fully loaded (USD)", Usd(t.CostUsd, "unpriced") + (t.UnpricedRequests > 0 ? $" (+{t.UnpricedRequests} unpriced)" : ""));
        head.AddRow("cost, marginal (USD)", Usd(t.MarginalCostUsd, "unpriced"));
        head.AddRow("revenue (USD)", Usd(t.RevenueUsd, "no plan") + (t.RevenueUsd is not null && t.UnplannedRequests > 0 ? $" ({t.UnplannedRequests} without a plan)" : ""));
        head.AddRow("cost per 1M tokens (USD)", Usd(t.CostPerMillionTokensUsd, "unpriced"));
        head.AddRow("gross margin", Pct(t.GrossMargin, "no plan"));
        head.AddRow("inference cost / revenue", Pct(t.CostShareOfRevenue, "no plan"));
        head.AddRow("fixed share of cost", Pct(r.FixedShare, "no cost"));
        foreach (var p in r.Pools)
        {
            head.AddRow($"pool {Markup.Escape(p.Provider)}: utilisation / stranded (USD)", $"{Pct(p.Utilisation, "-")} / {Usd(p.StrandedCostUsd, "-")} ({Markup.Escape(p.StrandedBasis)})");
        }
        head.AddRow("supplier concentration (HHI)", r.SupplierHhi is { } hhi ? hhi.ToString("0", CultureInfo.InvariantCulture) : "no spend");
        head.AddRow("next 1M tokens at current load (USD)", Usd(r.NextMillionTokensUsd, "unpriced"));
        AnsiConsole.Write(head);

        var rows = new Table().Title($"[bold]by {r.By.ToString().ToLowerInvariant()}[/]")
            .AddColumns("group", "requests", "tokens", "cost USD", "marginal USD", "revenue USD", "USD / 1M tok", "margin", "cost / revenue");
        foreach (var x in r.Rows.Append(t))
        {
            rows.AddRow(Markup.Escape(x.Group), x.Requests.ToString("N0", CultureInfo.InvariantCulture), (x.InputTokens + x.OutputTokens).ToString("N0", CultureInfo.InvariantCulture),
                Usd(x.CostUsd, "unpriced"), Usd(x.MarginalCostUsd, "unpriced"), Usd(x.RevenueUsd, "no plan"), Usd(x.CostPerMillionTokensUsd, "unpriced"),
                Pct(x.GrossMargin, "no plan"), Pct(x.CostShareOfRevenue, "no plan"));
        }
        AnsiConsole.Write(rows);

        if (r.Savings.Count > 0)
        {
            var savings = new Table().Title("[bold]savings by lever[/]").AddColumns("lever", "saved USD", "counterfactual");
            foreach (var s in r.Savings)
            {
                savings.AddRow(Markup.Escape(s.Lever), Usd(s.SavingsUsd, "-"), Markup.Escape(s.Counterfactual));
            }
            AnsiConsole.Write(savings);
        }
        var curve = new Table().Title("[bold]marginal cost of the next 1M tokens[/]").AddColumns("tokens", "source", "USD / 1M");
        foreach (var s in r.MarginalCurve)
        {
            curve.AddRow($"{s.FromTokens.ToString("N0", CultureInfo.InvariantCulture)} – {s.ToTokens.ToString("N0", CultureInfo.InvariantCulture)}",
                Markup.Escape(s.Source), Usd(s.UsdPerMillion, "unpriced"));
        }
        AnsiConsole.Write(curve);
    }
}
