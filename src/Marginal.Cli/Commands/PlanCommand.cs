using System.CommandLine;
using System.Globalization;
using Marginal.Core.Ledger;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pricing;
using Marginal.Planner;
using Marginal.Planner.Reports;
using Marginal.Planner.Scenarios;
using Marginal.Server.Dashboard;
using Marginal.Storage;
using Marginal.Storage.Opening;
using Spectre.Console;

namespace Marginal.Cli.Commands;

/// <summary>
/// <c>marginal plan SCENARIO</c>: optimises the capacity portfolio of a scenario file and prints it with its monthly
/// accounts; <c>--compare</c> plans other scenarios beside it, <c>--html</c> writes a self-contained report, and
/// <c>--from-ledger</c> takes demand and the cache hit rate from the usage ledger (<see cref="LedgerDemand"/>).
/// A bad scenario, or an empty ledger or window, gives one line per problem on stderr and exit code 2.
/// </summary>
internal static class PlanCommand
{
    /// <summary>The observed window when <c>--since</c> is not given.</summary>
    private static readonly TimeSpan DefaultWindow = TimeSpan.FromDays(30);

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
        var fromLedger = new Option<bool>("--from-ledger")
        {
            Description = "Replace the scenario's demand (per served model: tokens per month, daily profile, growth) and cache hit rate with what the usage ledger observed.",
        };
        var config = ConfigFile.Option();
        config.Aliases.Add("--ledger-config");
        var since = new Option<string?>("--since") { Description = $"With --from-ledger: start of the observed window: {CliTime.Allowed}. Default: 30 days before --until." };
        var until = new Option<string?>("--until") { Description = "With --from-ledger: end of the observed window (exclusive), same forms. Default: now." };
        var command = new Command("plan", "Optimise a capacity portfolio (own, rent, reserve, spot, API, joint venture) and project P&L, burn and runway.")
        {
            scenario, compare, format, html, quick, fromLedger, config, since, until,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var main = parse.GetValue(scenario)!;
            if (!parse.GetValue(fromLedger) && (parse.GetValue(since) ?? parse.GetValue(until)) is not null)
            {
                return await BadInputAsync(["marginal plan: --since and --until set the ledger's window: add --from-ledger"]);
            }
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
            LedgerScenario? ledger = null;
            string? ledgerPath = null;
            string? ledgerStart = null;
            IReadOnlyList<string> throughputNotes = [];
            if (parse.GetValue(fromLedger))
            {
                try
                {
                    LedgerDemand demand;
                    IReadOnlyList<PoolThroughput> pools;
                    (demand, pools, ledgerPath, ledgerStart) = await ObserveAsync(parse.GetValue(config), parse.GetValue(since), parse.GetValue(until), cancellationToken);
                    // Every scenario, compared ones too, is planned on the same observed demand and measured throughput.
                    var applied = scenarios.Select(demand.ApplyTo).ToList();
                    ledger = applied[0];
                    scenarios = applied.Select((a, i) =>
                    {
                        var measured = LedgerThroughput.ApplyTo(a.Scenario, pools, out var notes);
                        if (i == 0)
                        {
                            throughputNotes = notes;
                        }
                        return measured;
                    }).ToList();
                }
                catch (Exception ex) when (ex is ConfigException or StoreOpenException)
                {
                    return await BadInputAsync([ex.Message]);
                }
                catch (ScenarioException ex)
                {
                    return await BadInputAsync(ex.Problems);
                }
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
            var throughput = ledger is null ? null : LedgerThroughput.Figures(plans[0].Inputs);
            if (parse.GetValue(html) is { } htmlFile)
            {
                await File.WriteAllTextAsync(htmlFile.FullName, HtmlReport.Render(summary, headlines), cancellationToken);
            }
            if (parse.GetValue(format) == "json")
            {
                await Console.Out.WriteLineAsync(PlanSummary.ToJson(summary, headlines, ledger, throughput));
            }
            else
            {
                var console = PlanTables.Console();
                if (ledger is not null)
                {
                    PlanTables.WriteLedger(console, ledger, ledgerPath!, ledgerStart);
                    PlanTables.WriteThroughput(console, throughput!, throughputNotes);
                }
                PlanTables.Write(console, summary, headlines, parse.GetValue(html)?.FullName);
            }
            return 0;
        });
        return command;
    }

    /// <summary>
    /// What the ledger observed in [since, until): demand, and the throughput of each owned pool (the providers of
    /// <c>kind: local</c> with a <c>pool:</c> in the configuration; busy hours from their loaded cost, as the economics
    /// report counts them). Since defaults to 30 days before until (default now). A ledger whose
    /// first record is later than since is observed from the UTC midnight before that record (the day it started
    /// recording, to the day), so days before it existed do not dilute the monthly figures; <c>Start</c> then says so.
    /// An empty ledger or window is a <see cref="ConfigException"/> with one line.
    /// </summary>
    private static async Task<(LedgerDemand Demand, IReadOnlyList<PoolThroughput> Pools, string Path, string? Start)> ObserveAsync(FileInfo? configFile, string? sinceText, string? untilText, CancellationToken cancellationToken)
    {
        var now = TimeProvider.System.GetUtcNow();
        var until = CliTime.Option("plan", "--until", untilText, now) ?? now;
        var since = CliTime.Option("plan", "--since", sinceText, now) ?? until - DefaultWindow;
        if (since >= until)
        {
            throw new ConfigException($"marginal plan: --since {since:u} is not before --until {until:u}");
        }
        var (loaded, _) = ConfigFile.Load(configFile);
        await using var store = await MarginalStores.OpenAsync(loaded.Storage, cancellationToken: cancellationToken);
        DateTimeOffset? first = null;
        await foreach (var record in store.ReadAsync(null, until, cancellationToken))
        {
            first = record.Time;
            break;
        }
        if (first is not { } firstTime)
        {
            throw new ConfigException($"marginal plan: --from-ledger: the ledger {store.Path} has no records before {until:u}; serve traffic first, or point --config at the deployment's configuration");
        }
        var firstDay = new DateTimeOffset(firstTime.UtcDateTime.Date, TimeSpan.Zero);
        var start = firstDay > since ? firstDay : since;
        var records = new List<UsageRecord>();
        await foreach (var record in store.ReadAsync(start, until, cancellationToken))
        {
            records.Add(record);
        }
        var demand = LedgerDemand.Derive(records, start, until);
        if (demand.Classes.Count == 0)
        {
            throw new ConfigException(string.Create(CultureInfo.InvariantCulture,
                $"marginal plan: --from-ledger: no output tokens served from {start:u} to {until:u} in the ledger {store.Path} ({demand.Records:N0} served requests); widen the window with --since"));
        }
        // The owned pools and their cost per hour as the economics report takes them from the configuration.
        var poolCost = EconomicsInputs.From(loaded, PriceBookLoader.LoadWithOverride(loaded.Pricing.Book)).Pools
            .ToDictionary(p => p.Provider, p => p.CostPerHourUsd, StringComparer.Ordinal);
        return (demand, LedgerThroughput.Derive(records, poolCost, start, until), store.Path, start > since ? string.Create(CultureInfo.InvariantCulture, $"the ledger's first record is at {firstTime:u}: the window starts at {start:u}, not at {since:u}") : null);
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
    public static IAnsiConsole Console()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Out) });
        // Redirected output has no width; the monthly table needs about 210 columns.
        console.Profile.Width = Math.Max(console.Profile.Width, 210);
        return console;
    }

    /// <summary>What <c>--from-ledger</c> derived, before the plan: one row per observed class, then the notes.</summary>
    public static void WriteLedger(IAnsiConsole console, LedgerScenario ledger, string path, string? windowNote)
    {
        var o = ledger.Observed;
        console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"Demand from the ledger {path}: {o.Since:u} to {o.Until:u} ({o.Days:0.##} days, {o.Records:N0} requests); a month is {LedgerDemand.DaysPerMonth} days")));
        if (windowNote is not null)
        {
            console.MarkupLine(Markup.Escape($"note: {windowNote}"));
        }
        var table = Table("Derived demand (per served model)", "class", "planned as", "requests", "input tokens", "cached", "output tokens", "input / month", "output / month", "peak hour", "growth / month");
        foreach (var (c, w) in o.Classes.Zip(ledger.Workloads))
        {
            table.AddRow(Markup.Escape(c.Name), Markup.Escape(w.Model), N(c.Requests), N(c.InputTokens), Pct(c.CacheShare), N(c.OutputTokens), N(c.InputTokensPerMonth), N(c.OutputTokensPerMonth),
                string.Create(CultureInfo.InvariantCulture, $"{c.PeakHour:00}:00 ({Pct(c.DailyProfile[c.PeakHour])})"), $"{Pct(w.GrowthPerMonth)} ({(w.GrowthFromLedger ? "trend" : "scenario")})");
        }
        console.Write(table);
        console.MarkupLine(Markup.Escape($"cache hit rate (cached input / input): {Pct(ledger.CacheHitRate)}"));
        foreach (var note in ledger.Notes)
        {
            console.MarkupLine(Markup.Escape($"note: {note}"));
        }
    }

    /// <summary>Which throughput figure the plan used for each option and workload: measured on an owned pool, or the catalogue estimate.</summary>
    public static void WriteThroughput(IAnsiConsole console, IReadOnlyList<ThroughputFigure> figures, IReadOnlyList<string> notes)
    {
        console.MarkupLine("Throughput used per option (measured on the ledger's owned pools where one matches, else the performance model):");
        foreach (var f in figures)
        {
            console.MarkupLine(Markup.Escape($"  {f.Option} / {f.Workload}: {f.Describe()}"));
        }
        foreach (var note in notes)
        {
            console.MarkupLine(Markup.Escape($"note: {note}"));
        }
    }

    public static void Write(IAnsiConsole console, PlanSummary plan, IReadOnlyList<PlanHeadline> compare, string? htmlPath)
    {
        var h = plan.Headline;
        console.MarkupLine($"[bold]Plan: {Markup.Escape(plan.Scenario)}[/]  ({Markup.Escape(plan.File)})");
        console.MarkupLine($"net present cost {Usd(h.NetPresentCost)} · cost per 1M output tokens {Usd(h.CostPerMillion, 3)} · utilisation {Pct(h.Utilisation)} · fixed share of cost {Pct((double)h.FixedShare)} · NPV {Usd(h.NetPresentValue)}");
        console.MarkupLine($"revenue {Usd(h.Revenue)} · EBITDA {Usd(h.Ebitda)} · capex {Usd(h.Capex)} · lowest cash {Usd(h.MinimumCash)} · capital needed {Usd(h.CapitalNeeded)} · runway at the end {Runway(h.FinalRunwayMonths)}");
        console.MarkupLine(Markup.Escape(h.BoundsLine()));

        var portfolio = Table("Recommended portfolio", "option", "kind", "supplier", "accelerator", "peak GPUs", "mean in use", "GPUs at end", "output tokens (M)", "cost", "per 1M out", "utilisation", "serving");
        foreach (var o in plan.Portfolio)
        {
            portfolio.AddRow(o.Name, o.Kind, o.Supplier, o.Accelerator ?? "-", N(o.PeakGpus), N(o.AverageGpusInUse), N(o.FinalGpus), N(o.OutputTokensMillions), Usd(o.Cost),
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
            // Each compared plan's bounds on a line of its own: the table is already as wide as a terminal.
            foreach (var c in compare)
            {
                console.MarkupLine(Markup.Escape($"{c.Name}: {c.BoundsLine()}"));
            }
        }
        console.MarkupLine($"solved {plan.Variables:N0} variables, {plan.Constraints:N0} constraints in {plan.SolveSeconds:0.00} s");
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

    private static string N(long value) => value.ToString("#,0", CultureInfo.InvariantCulture);

    private static string Pct(double? value) => ReportFormat.Pct(value);

    private static string Runway(double? months) => months is { } m ? $"{m:0.0} mo" : "no burn";
}
