using System.CommandLine;
using System.Globalization;
using Marginal.Planner;
using Marginal.Planner.Reports;
using Marginal.Planner.Scenarios;
using Spectre.Console;

namespace Marginal.Cli.Commands;

/// <summary>
/// <c>marginal plan SCENARIO</c>: optimises the capacity portfolio of a scenario file and prints it with its monthly
/// accounts; <c>--compare</c> plans other scenarios beside it, <c>--html</c> writes a self-contained report.
/// A bad scenario gives one line per problem on stderr and exit code 2.
/// </summary>
internal static class PlanCommand
{
    public static Command Create()
    {
        var scenario = new Argument<FileInfo>("scenario") { Description = "Scenario file (YAML), e.g. samples/scenarios/own-base-burst-cloud.yaml." };
        var compare = new Option<string[]>("--compare")
        {
            Description = "Other scenarios to plan side by side: a file, or a name looked up as NAME.yaml beside SCENARIO.",
            AllowMultipleArgumentsPerToken = true,
        };
        var format = new Option<string>("--format") { Description = "table (default) or json.", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json");
        var html = new Option<FileInfo?>("--html") { Description = "Also write a self-contained HTML report with charts to this file." };
        var quick = new Option<bool>("--no-sensitivity") { Description = "Skip the tornado and the re-solved shadow prices (one solve per scenario)." };
        var command = new Command("plan", "Optimise a capacity portfolio (own, rent, reserve, spot, API, joint venture) and project P&L, burn and runway.")
        {
            scenario, compare, format, html, quick,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var main = parse.GetValue(scenario)!;
            var others = parse.GetValue(compare) ?? [];
            var sensitivity = !parse.GetValue(quick);
            var scenarios = new List<Scenario>();
            var problems = new List<string>();
            foreach (var path in new[] { main.FullName }.Concat(others.Select(o => ResolveCompare(o, main))))
            {
                try
                {
                    scenarios.Add(ScenarioLoader.Load(path));
                }
                catch (ScenarioException ex)
                {
                    problems.AddRange(ex.Problems);
                }
            }
            if (problems.Count > 0)
            {
                return await BadInputAsync(problems);
            }
            var plans = new List<PlanResult>();
            try
            {
                for (var i = 0; i < scenarios.Count; i++)
                {
                    // Comparisons need the headline only: no tornado for them.
                    plans.Add(CapacityPlanner.Plan(scenarios[i], new PlanOptions(FiniteDifferences: sensitivity && i == 0, Tornado: sensitivity && i == 0)));
                }
            }
            catch (ScenarioException ex)
            {
                return await BadInputAsync(ex.Problems);
            }
            var summary = PlanSummary.Of(plans[0]);
            var headlines = plans.Select(p => PlanSummary.Of(p).Headline).ToList();
            if (parse.GetValue(html) is { } htmlFile)
            {
                await File.WriteAllTextAsync(htmlFile.FullName, HtmlReport.Render(summary, headlines), cancellationToken);
            }
            if (parse.GetValue(format) == "json")
            {
                await Console.Out.WriteLineAsync(PlanSummary.ToJson(summary, headlines));
            }
            else
            {
                PlanTables.Write(summary, headlines, parse.GetValue(html)?.FullName);
            }
            return 0;
        });
        return command;
    }

    private static async Task<int> BadInputAsync(IEnumerable<string> problems)
    {
        foreach (var problem in problems)
        {
            await Console.Error.WriteLineAsync(problem);
        }
        return MarginalCommand.BadInput;
    }

    private static string ResolveCompare(string name, FileInfo main)
    {
        if (File.Exists(name))
        {
            return Path.GetFullPath(name);
        }
        var beside = Path.Combine(main.DirectoryName ?? ".", name.EndsWith(".yaml", StringComparison.Ordinal) ? name : name + ".yaml");
        return File.Exists(beside) ? beside : Path.GetFullPath(name);
    }
}

/// <summary>The console form of a plan (Spectre.Console tables).</summary>
internal static class PlanTables
{
    public static void Write(PlanSummary plan, IReadOnlyList<PlanHeadline> compare, string? htmlPath)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        // Redirected output has no width; the monthly table needs about 210 columns.
        console.Profile.Width = Math.Max(console.Profile.Width, 210);
        var h = plan.Headline;
        console.MarkupLine($"[bold]Plan: {Markup.Escape(plan.Scenario)}[/]  ({Markup.Escape(plan.File)})");
        console.MarkupLine($"net present cost {Usd(h.NetPresentCost)} · cost per 1M output tokens {Usd(h.CostPerMillion, 3)} · utilisation {Pct(h.Utilisation)} · fixed share of cost {Pct((double)h.FixedShare)} · NPV {Usd(h.NetPresentValue)}");
        console.MarkupLine($"revenue {Usd(h.Revenue)} · EBITDA {Usd(h.Ebitda)} · capex {Usd(h.Capex)} · lowest cash {Usd(h.MinimumCash)} · capital needed {Usd(h.CapitalNeeded)} · runway at the end {Runway(h.FinalRunwayMonths)}");

        var portfolio = Table("Recommended portfolio", "option", "kind", "supplier", "accelerator", "peak GPUs", "GPUs at end", "output tokens (M)", "cost", "per 1M out", "utilisation", "serving");
        foreach (var o in plan.Portfolio)
        {
            portfolio.AddRow(o.Name, o.Kind, o.Supplier, o.Accelerator ?? "-", N(o.PeakGpus), N(o.FinalGpus), N(o.OutputTokensMillions), Usd(o.Cost),
                o.CostPerMillion is { } c ? Usd(c, 3) : "-", Pct(o.Utilisation), o.GpusPerReplica is { } g ? $"TP{g} × batch {o.Batch}, {o.Bound}-bound" : "-");
        }
        console.Write(portfolio);

        var economics = Table("Every option at full use (performance model)", "option", "kind", "accelerator", "class", "output tokens per GPU-hour", "USD per GPU-hour", "per 1M out");
        foreach (var e in plan.Options)
        {
            economics.AddRow(e.Name, e.Kind, e.Accelerator ?? "-", e.ServedClass, e.OutputTokensPerGpuHour is { } t ? N(t) : "-",
                e.UsdPerGpuHour is { } hourly ? Usd(hourly, 3) : "-", e.CostPerMillionAtFullUse is { } c ? Usd(c, 3) : "cannot serve");
        }
        console.Write(economics);

        var months = Table("Monthly projection", "month", "output (M)", "revenue", "inference", "fixed", "variable", "gross margin", "compute margin", "EBITDA", "capex", "cash", "burn", "runway", "utilisation", "per 1M", "economic debt");
        foreach (var m in plan.Months)
        {
            months.AddRow(m.Month.ToString("yyyy-MM", CultureInfo.InvariantCulture), N(m.OutputTokens), Usd(m.Revenue), Usd(m.InferenceCost), Usd(m.FixedCost), Usd(m.VariableCost),
                Usd(m.GrossMargin), Usd(m.ComputeMargin), Usd(m.Ebitda), Usd(m.Capex), Usd(m.Cash), Usd(m.Burn), Runway(m.RunwayMonths), Pct(m.Utilisation),
                Usd(m.CostPerMillion, 3), Usd(m.BalanceSheet.EconomicDebt));
        }
        console.Write(months);

        if (plan.BreakEvens.Count > 0)
        {
            var breakEven = Table("Break-even utilisation, buy vs rent: u* = F / (R − v)", "owned", "rented", "F $/h", "v $/h", "R $/h", "u*", "planned");
            foreach (var b in plan.BreakEvens)
            {
                breakEven.AddRow(b.Owned, b.Rented, Usd(b.FixedPerHour, 3), Usd(b.VariablePerHour, 3), Usd(b.RentPerHour, 3), b.Utilisation is { } u ? Pct(u) : "never", Pct(b.PlannedUtilisation));
            }
            console.Write(breakEven);
        }

        var shadow = Table("Shadow prices", "what", "value", "unit", "meaning");
        foreach (var s in plan.ShadowPrices)
        {
            shadow.AddRow(Markup.Escape(s.Name), Usd(s.Value), s.Unit, Markup.Escape(s.Meaning));
        }
        console.Write(shadow);

        if (plan.Tornado.Count > 0)
        {
            var tornado = Table("Sensitivity of NPV (tornado, re-optimised)", "input", "low", "NPV low", "high", "NPV high", "swing");
            foreach (var t in plan.Tornado)
            {
                tornado.AddRow(t.Input, t.Low, Usd(t.NpvLow), t.High, Usd(t.NpvHigh), Usd(t.Swing));
            }
            console.Write(tornado);
        }

        if (compare.Count > 1)
        {
            var table = Table("Comparison", "scenario", "net present cost", "NPV", "per 1M out", "utilisation", "fixed share", "EBITDA", "capex", "lowest cash", "capital needed", "peak economic debt", "peak balance-sheet debt");
            foreach (var c in compare)
            {
                table.AddRow(Markup.Escape(c.Name), Usd(c.NetPresentCost), Usd(c.NetPresentValue), Usd(c.CostPerMillion, 3), Pct(c.Utilisation), Pct((double)c.FixedShare),
                    Usd(c.Ebitda), Usd(c.Capex), Usd(c.MinimumCash), Usd(c.CapitalNeeded), Usd(c.PeakEconomicDebt), Usd(c.PeakBalanceSheetDebt));
            }
            console.Write(table);
        }
        console.MarkupLine($"solved {plan.Variables:N0} variables, {plan.Constraints:N0} constraints in {plan.SolveSeconds:0.00} s; integer rounding added {Usd(plan.RoundingGap)} to the LP bound");
        if (htmlPath is not null)
        {
            console.MarkupLine($"report: {Markup.Escape(htmlPath)}");
        }
    }

    private static Table Table(string title, params string[] columns)
    {
        var table = new Table { Title = new TableTitle(title), Border = TableBorder.Simple };
        foreach (var column in columns)
        {
            table.AddColumn(new TableColumn(column) { Alignment = column is "option" or "kind" or "supplier" or "accelerator" or "what" or "meaning" or "scenario" or "input" or "owned" or "rented" or "serving" or "unit" or "class" ? Justify.Left : Justify.Right });
        }
        return table;
    }

    private static string Usd(decimal value, int decimals = 0) => ReportFormat.Usd(value, decimals);

    private static string N(double value) => value.ToString("#,0.#", CultureInfo.InvariantCulture);

    private static string Pct(double? value) => ReportFormat.Pct(value);

    private static string Runway(double? months) => months is { } m ? $"{m:0.0} mo" : "no burn";
}
