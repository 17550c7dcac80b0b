using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Marginal.Core.Ledger;
using Marginal.Core.Pricing;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
using Marginal.Local;
using Marginal.Local.Scheduling;
using Marginal.Local.TestModels;
using Marginal.Planner.Hardware;
using Marginal.Server.Composition;
using Marginal.Server.Dashboard;
using Marginal.Server.Hosting;
using Marginal.Storage.Sqlite;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace Marginal.Cli.Commands;

/// <summary>
/// <c>marginal demo</c>: the whole pipeline on this machine with no config and no network. Makes (or reuses) the tiny
/// test model and its q4_0 quantization under <c>--dir</c>, starts the gateway in-process with an SQLite ledger and
/// one owned pool, replays a built-in workload through HTTP, and prints the unit economics from the ledger.
/// </summary>
internal static class DemoCommand
{
    /// <summary>
    /// The pool is priced as one H100 SXM from the planner's shipped catalogue (its price and power carry their own
    /// source and date there); the demo's model runs on this machine's CPU, so the figures show the arithmetic, not
    /// what this machine costs.
    /// </summary>
    private const string PricedAs = "h100-sxm";

    /// <summary>Uptime Institute Global Data Center Survey 2024: ~1.5 for existing sites, ~1.2–1.3 for new ones; the planner's default.</summary>
    private const decimal Pue = 1.3m;

    /// <summary>Assumption: US industrial electricity, about 8 cents per kWh (EIA Electric Power Monthly, industrial sector, 2024).</summary>
    private const decimal UsdPerKwh = 0.08m;

    /// <summary>Assumption (as samples/scenarios/own-base-burst-cloud.yaml, 2026-11): $180 per kW of IT load a month, near North American wholesale colocation asking rates.</summary>
    private const decimal ColocationUsdPerKwMonth = 180m;

    /// <summary>Assumption (as samples/scenarios/own-base-burst-cloud.yaml, 2026-11): staff and support spread per GPU, $150 a month.</summary>
    private const decimal OperationsUsdPerMonth = 150m;

    /// <summary>Prompts of mixed length; the workload repeats some of them, as real traffic does.</summary>
    private static readonly string[] Prompts =
    [
        "Hi.",
        "Summarise the quarterly numbers in one sentence.",
        "Write a short product description for a stainless steel water bottle that keeps drinks cold for a day.",
        "Translate to French: the meeting moved to Thursday afternoon.",
        "Explain, step by step and with an example, how continuous batching lets an inference server admit new requests between decode steps without waiting for the running batch to finish, and why that raises throughput on shared hardware.",
        "List three risks of owning GPUs instead of renting them.",
        "What is 17 times 23?",
        "Draft a polite reply declining a meeting invitation next week because of travel, and suggest two other times.",
    ];

    public static Command Create()
    {
        var requests = new Option<int>("--requests", "-n") { Description = "Requests in the workload.", DefaultValueFactory = _ => 48 };
        var concurrency = new Option<int>("--concurrency", "-c") { Description = "Clients sending at once.", DefaultValueFactory = _ => 8 };
        var directory = new Option<string>("--dir") { Description = "Folder for the model files and the ledger (reused between runs).", DefaultValueFactory = _ => ".marginal" };
        var command = new Command("demo", "Serve a built-in workload on a self-made local model through the whole gateway and print its unit economics (no config, no network).")
        {
            requests, concurrency, directory,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var n = parse.GetValue(requests);
            var clients = parse.GetValue(concurrency);
            if (n < 1 || clients < 1)
            {
                await Console.Error.WriteLineAsync("marginal demo: --requests and --concurrency must be at least 1");
                return MarginalCommand.BadInput;
            }
            return await RunAsync(Path.GetFullPath(parse.GetValue(directory)!), n, clients, cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(string dir, int requests, int clients, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(dir);
        var model = Path.Combine(dir, "tiny.gguf");
        var quantized = Path.Combine(dir, "tiny-q4_0.gguf");
        var ledger = Path.Combine(dir, "demo.db");
        if (!File.Exists(quantized))
        {
            AnsiConsole.MarkupLine("[grey]making the tiny test model and quantizing it to q4_0 (once; reused from then on)[/]");
            await Task.Run(() =>
            {
                TestModelWriter.Write(model, TestModelShape.Tiny);
                ModelQuantizer.Quantize(model, quantized, LLama.Native.LLamaFtype.MOSTLY_Q4_0);
            }, cancellationToken);
        }

        var pool = PoolCost();
        // Written out too, so `marginal report --config` reads the same ledger afterwards.
        var configPath = Path.Combine(dir, "demo.yaml");
        await File.WriteAllTextAsync(configPath, Yaml(quantized, ledger, pool), cancellationToken);
        var config = ConfigLoader.Load(configPath);
        await using var app = MarginalServer.Create(config, urls: "http://127.0.0.1:0");
        await app.StartAsync(cancellationToken);
        var scheduler = (BatchScheduler)app.Services.GetRequiredService<GatewayModelSource>().Current.Providers["owned"].Chat.GetService(typeof(BatchScheduler))!;
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };

        var started = DateTimeOffset.UtcNow;
        var before = scheduler.GetStats();
        var failed = 0;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var task = progress.AddTask($"{requests} requests, {clients} clients", maxValue: requests);
                await Parallel.ForEachAsync(Enumerable.Range(0, requests), new ParallelOptions { MaxDegreeOfParallelism = clients, CancellationToken = cancellationToken },
                    async (i, ct) =>
                    {
                        // Every third request repeats the first prompts; output lengths vary from 8 to 48 tokens.
                        var prompt = Prompts[i % 3 == 0 ? i % 2 : i % Prompts.Length];
                        var body = new JsonObject
                        {
                            ["model"] = "owned-model",
                            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt }),
                            ["max_tokens"] = 8 + (i * 13 % 41),
                            ["temperature"] = 0,
                        };
                        using var response = await http.PostAsJsonAsync("/v1/chat/completions", body, ct);
                        if (!response.IsSuccessStatusCode)
                        {
                            Interlocked.Increment(ref failed);
                        }
                        task.Increment(1);
                    });
            });
        var wall = DateTimeOffset.UtcNow - started;
        var after = scheduler.GetStats();
        await app.StopAsync(cancellationToken);

        var records = new List<UsageRecord>();
        await using (var store = SqliteStore.Open(ledger))
        {
            await foreach (var record in store.ReadAsync(since: started, cancellationToken: cancellationToken))
            {
                records.Add(record);
            }
        }
        Print(records, failed, wall, before, after, pool, ledger, configPath);
        await using (var store = SqliteStore.Open(ledger))
        {
            var html = Path.Combine(dir, "economics.html");
            var report = await EconomicsInputs.ReportBuilder(config).BuildAsync(store, started, null, Economics.UnitEconomics.EconomicsGrouping.Model, DateTimeOffset.UtcNow, cancellationToken);
            await EconomicsReportCommand.WriteHtmlAsync(html, report, cancellationToken);
            AnsiConsole.MarkupLine($"Unit economics report (open in a browser, no network needed): [bold]{Markup.Escape(html)}[/]");
        }
        return failed == 0 ? 0 : 1;
    }

    private static OwnedPoolCost PoolCost()
    {
        var gpu = AcceleratorCatalogue.Shipped[PricedAs];
        var kw = (decimal)(gpu.PowerKw ?? 0);
        return new OwnedPoolCost(gpu.PurchasePrice ?? 0m, (int)(gpu.LifetimeYears * 12), kw, UsdPerKwh, Pue, ColocationUsdPerKwMonth * kw, OperationsUsdPerMonth);
    }

    private static string Yaml(string model, string ledger, OwnedPoolCost pool) => string.Create(CultureInfo.InvariantCulture, $"""
        server:
          auth: none
        storage:
          path: "{ledger}"
        providers:
          owned:
            kind: local
            path: "{model}"
            max_batch: 8
            queue_limit: 1024
            context: 256
            pool:
              purchase_usd: {pool.PurchaseUsd}
              lifetime_months: {pool.LifetimeMonths}
              power_kw: {pool.PowerKw}
              usd_per_kwh: {pool.UsdPerKwh}
              pue: {pool.Pue}
              colocation_usd_per_month: {pool.ColocationUsdPerMonth}
              operations_usd_per_month: {pool.OperationsUsdPerMonth}
        models:
          owned-model:
            provider: owned
        """);

    private static void Print(List<UsageRecord> records, int failed, TimeSpan wall, SchedulerStats before, SchedulerStats after, OwnedPoolCost pool, string ledger, string configPath)
    {
        var ok = records.Where(r => r.Status == "ok").ToList();
        var input = ok.Sum(r => r.InputTokens);
        var output = ok.Sum(r => r.OutputTokens);
        var full = ok.Sum(r => r.CostUsd ?? 0m);
        var marginal = ok.Sum(r => r.MarginalCostUsd ?? 0m);
        var busy = after.BusyTime - before.BusyTime;
        var steps = after.Steps - before.Steps;
        var perMillion = (decimal tokens, decimal cost) => tokens > 0 ? (cost / tokens * 1_000_000m).ToString("0.0000", CultureInfo.InvariantCulture) : "-";
        var table = new Table().AddColumn("Unit economics").AddColumn(new TableColumn("").RightAligned());
        table.AddRow("requests (ok / failed)", $"{ok.Count} / {failed}");
        table.AddRow("tokens in / out", $"{input:N0} / {output:N0}");
        table.AddRow("cost, fully loaded (USD)", full.ToString("0.000000", CultureInfo.InvariantCulture));
        table.AddRow("cost, marginal (USD)", marginal.ToString("0.000000", CultureInfo.InvariantCulture));
        table.AddRow("per 1M tokens, fully loaded (USD)", perMillion(input + output, full));
        table.AddRow("per 1M tokens, marginal (USD)", perMillion(input + output, marginal));
        table.AddRow("per 1M output tokens, fully loaded (USD)", perMillion(output, full));
        table.AddRow("busy fraction", (busy / wall).ToString("P1", CultureInfo.InvariantCulture));
        table.AddRow("mean batch occupancy", steps > 0 ? ((double)(after.SequenceSteps - before.SequenceSteps) / steps / after.MaxBatch).ToString("P1", CultureInfo.InvariantCulture) : "-");
        table.AddRow("tokens/s generated", ((after.GeneratedTokens - before.GeneratedTokens) / wall.TotalSeconds).ToString("N0", CultureInfo.InvariantCulture));
        table.AddRow("wall time", $"{wall.TotalSeconds:0.0} s");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(CultureInfo.InvariantCulture,
            "Pool priced as one {0} (planner catalogue): [bold]{1:0.0000} USD/h[/] = capex {2:0.0000} + energy {3:0.0000} + colocation and operations {4:0.0000}.",
            PricedAs, pool.CostPerHour, pool.CapexPerHour, pool.EnergyPerHour, pool.FixedPerHour);
        AnsiConsole.MarkupLine("Idle time is not charged to requests; formulas: docs/economics.md, \"Owned capacity\".");
        AnsiConsole.MarkupLine($"Ledger: [bold]{Markup.Escape(ledger)}[/]; read it with: marginal report --by provider --config {Markup.Escape(configPath)}");
    }
}
