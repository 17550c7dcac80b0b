using System.CommandLine;
using System.Globalization;
using Marginal.Core.Ledger;
using Marginal.Economics.Reports;
using Marginal.Economics.Reports.Formats;
using Marginal.Gateway.Configuration;
using Marginal.Storage;
using Marginal.Storage.Opening;
using Spectre.Console;

namespace Marginal.Cli.Commands;

/// <summary><c>marginal report</c>: requests, tokens by kind, cost, cost per 1M tokens and latency from the ledger.</summary>
internal static class ReportCommand
{
    private static readonly string[] Groupings = ["tenant", "model", "provider", "key"];
    private static readonly string[] Formats = ["table", "csv", "json"];

    public static Command Create()
    {
        var config = ConfigFile.Option();
        var since = new Option<string?>("--since") { Description = $"Start of the window (inclusive): {CliTime.Allowed}. Default: the first record." };
        var until = new Option<string?>("--until") { Description = "End of the window (exclusive), same forms. Default: now." };
        var by = new Option<string>("--by") { Description = "Group by tenant, model, provider or key.", DefaultValueFactory = _ => "model" };
        var format = new Option<string>("--format") { Description = "table, csv or json.", DefaultValueFactory = _ => "table" };
        var command = new Command("report", "Usage and cost from the ledger.") { config, since, until, by, format };
        command.Add(EconomicsReportCommand.Create());
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var now = TimeProvider.System.GetUtcNow();
                var from = CliTime.Option("report", "--since", parse.GetValue(since), now);
                var to = CliTime.Option("report", "--until", parse.GetValue(until), now);
                var grouping = Choice("--by", parse.GetValue(by)!, Groupings);
                var output = Choice("--format", parse.GetValue(format)!, Formats);
                var (loaded, _) = ConfigFile.Load(parse.GetValue(config));
                await using var store = await MarginalStores.OpenAsync(loaded.Storage, cancellationToken: cancellationToken);
                var records = new List<UsageRecord>();
                await foreach (var record in store.ReadAsync(from, to, cancellationToken))
                {
                    records.Add(record);
                }
                var rows = UsageReport.Summarise(records, Enum.Parse<ReportGrouping>(grouping, ignoreCase: true));
                switch (output)
                {
                    case "csv": Console.Out.Write(UsageReportFormats.Csv(rows, grouping)); break;
                    case "json": Console.Out.Write(UsageReportFormats.Json(rows, grouping)); break;
                    default: WriteTable(rows, grouping, store.Path, from, to); break;
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

    private static string Choice(string name, string value, string[] allowed) =>
        allowed.Contains(value) ? value : throw new ConfigException($"marginal report: {name}: '{value}' is not allowed (allowed: {string.Join(", ", allowed)})");

    private static string Money(decimal? value, int decimals = 6) => value is { } v ? Math.Round(v, decimals).ToString("0.######", CultureInfo.InvariantCulture) : "";

    private static void WriteTable(IReadOnlyList<UsageReportRow> rows, string grouping, string path, DateTimeOffset? from, DateTimeOffset? to)
    {
        var table = new Table().Title($"[bold]usage by {grouping}[/] ({Markup.Escape(path)}, {(from is { } f ? $"{f:u}" : "start")} – {(to is { } t ? $"{t:u}" : "now")})")
            .AddColumns(grouping, "requests", "errors", "input", "cached", "cache write", "output", "reasoning", "cost USD", "USD / 1M tok", "p50 ms", "p95 ms");
        foreach (var column in table.Columns.Skip(1))
        {
            column.RightAligned();
        }
        foreach (var r in rows)
        {
            var cells = new[]
            {
                Markup.Escape(r.Group), N(r.Requests), N(r.Errors), N(r.InputTokens), N(r.CachedInputTokens), N(r.CacheWriteTokens), N(r.OutputTokens),
                N(r.ReasoningTokens), Money(r.CostUsd) + (r.UnpricedRequests > 0 ? $" (+{r.UnpricedRequests} unpriced)" : ""),
                Money(r.CostPerMillionTokensUsd, 4), UsageReportFormats.Ms(r.LatencyP50Ms), UsageReportFormats.Ms(r.LatencyP95Ms),
            };
            table.AddRow(r.Group == UsageReport.TotalGroup ? cells.Select(c => $"[bold]{c}[/]").ToArray() : cells);
        }
        AnsiConsole.Write(table);
    }

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
