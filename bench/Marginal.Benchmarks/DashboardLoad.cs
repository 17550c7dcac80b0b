using Marginal.Server.Composition;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Marginal.Core.Ledger;
using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;
using Marginal.Storage.Postgres;
using Marginal.Storage.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.Playwright;

namespace Marginal.Benchmarks;

/// <summary>
/// A bounded measurement of the dashboard over a large SQLite ledger, one seeding and a few timed runs of each step:
/// <c>dotnet run -c Release --project bench/Marginal.Benchmarks -- dashboard-load [--records N] [--runs R] [--browser] [--ledger FILE]</c>
/// (<c>--ledger</c> keeps the seeded ledger in FILE and reuses it on the next run, its rollups reset; <c>--postgres</c>
/// seeds that PostgreSQL database instead, through the store, and serves the dashboard from it).
/// (a) the first roll-forward of every record into the rollup table, on a store that has never read them; (b) GET
/// /dashboard/data over loopback HTTP through a real server, the first call (rollups loaded from the table into memory)
/// and R warm calls; (c) with <c>--browser</c>, the page opened in Debian's Chromium (headless, Playwright) until every
/// chart has rendered, R times. Prints one line per figure.
/// </summary>
internal static class DashboardLoad
{
    private const string AdminVariable = "MARGINAL_BENCH_ADMIN_KEY";
    private const string AdminKey = "bench-admin-key-0123456789abcdefghijk";

    public static async Task<int> RunAsync(string[] args)
    {
        if (!TryParse(args, out var records, out var runs, out var browser, out var kept, out var postgres))
        {
            return 2;
        }
        var directory = Directory.CreateTempSubdirectory("marginal-dashboard-load-");
        try
        {
            var ledger = kept ?? Path.Combine(directory.FullName, "ledger.db");
            var clock = new Stopwatch();
            Start(clock);
            if (postgres is not null)
            {
                // Seeded through the store, so its rollups are kept at append time as in a cluster.
                await using var store = await PostgresStore.OpenAsync(postgres);
                await DashboardLedger.SeedAsync(store, records, DateTimeOffset.UtcNow);
                Report("seed PostgreSQL (rollups kept at append)", records, clock.Elapsed);
                Start(clock);
                var rows = (await store.ReadRollupsAsync()).Count;
                Report("(a) PostgreSQL: read every rollup row", rows, clock.Elapsed, "rows");
            }
            else if (File.Exists(ledger))
            {
                // A kept ledger from an earlier run: forget its rollups so (a) rolls every record again.
                await using var connection = new SqliteConnection($"Data Source={ledger};Pooling=false");
                await connection.OpenAsync();
                await using var reset = connection.CreateCommand();
                reset.CommandText = "DELETE FROM usage_rollups; UPDATE rollup_state SET last_rowid = 0";
                await reset.ExecuteNonQueryAsync();
            }
            else
            {
                await DashboardLedger.SeedAsync(ledger, records, DateTimeOffset.UtcNow);
                Report("seed", records, clock.Elapsed);
            }

            if (postgres is null)
            {
                await using var store = SqliteStore.Open(ledger);
                Start(clock);
                var rolled = await store.RollForwardAsync();
                Report("(a) first roll-forward", rolled, clock.Elapsed);
                var rows = (await store.ReadRollupsAsync()).Count;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"rollup rows: {rows:N0}"));

                // The reference: every record read into .NET and summed there, the work of the per-record roll-forward
                // this store had before the grouping moved into SQLite (without its writes).
                Start(clock);
                var records2 = new List<UsageRecord>(records);
                await foreach (var record in store.ReadAsync())
                {
                    records2.Add(record);
                }
                _ = UsageRollup.From(records2).Count;
                Report("(a') reference: every record read and rolled up in .NET", records2.Count, clock.Elapsed);
            }

            Environment.SetEnvironmentVariable(AdminVariable, AdminKey);
            var config = new MarginalConfig();
            config.Server.Auth = "none";
            config.Server.AdminKeyEnv = AdminVariable;
            config.Storage.Path = ledger;
            if (postgres is not null)
            {
                Environment.SetEnvironmentVariable("MARGINAL_BENCH_POSTGRES_LEDGER", postgres);
                config.Storage.Kind = "postgres";
                config.Storage.ConnectionStringEnv = "MARGINAL_BENCH_POSTGRES_LEDGER";
                config.Storage.Spool = Path.Combine(directory.FullName, "spool");
            }
            await using var app = MarginalServer.Create(config, urls: "http://127.0.0.1:0");
            await app.StartAsync();
            var url = app.Urls.First();
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
            for (var i = 0; i <= runs; i++)
            {
                Start(clock);
                var bytes = (await http.GetByteArrayAsync("/dashboard/data")).Length;
                Report(i == 0 ? "(b) GET /dashboard/data, first (rollups loaded)" : "(b) GET /dashboard/data, warm", bytes, clock.Elapsed, "bytes");
            }
            if (browser)
            {
                using var playwright = await Playwright.CreateAsync();
                await using var chromium = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
                {
                    ExecutablePath = "/usr/bin/chromium",
                    Headless = true,
                    Args = ["--no-sandbox"],
                });
                for (var i = 0; i < runs; i++)
                {
                    await using var context = await chromium.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1800 } });
                    var page = await context.NewPageAsync();
                    // Signed in first through the form (the key is posted, never put in a URL); the timed load is a
                    // signed-in person opening the page.
                    await page.GotoAsync($"{url}/dashboard");
                    await page.FillAsync("input[name='key']", AdminKey);
                    await page.ClickAsync("button[type='submit']");
                    await page.WaitForSelectorAsync("#dashboard[data-rendered='true']", new PageWaitForSelectorOptions { Timeout = 60_000 });
                    Start(clock);
                    await page.GotoAsync($"{url}/dashboard");
                    await page.WaitForSelectorAsync("#dashboard[data-rendered='true']", new PageWaitForSelectorOptions { Timeout = 60_000 });
                    Report("(c) page in Chromium until every chart rendered", i + 1, clock.Elapsed, "run");
                }
            }
            await app.StopAsync();
            return 0;
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }


    private static bool TryParse(string[] args, out int records, out int runs, out bool browser, out string? kept, out string? postgres)
    {
        records = 1_000_000;
        runs = 5;
        browser = false;
        kept = null;
        postgres = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--records" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var n) && n > 0:
                    records = n;
                    i++;
                    break;
                case "--runs" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var r) && r > 0:
                    runs = r;
                    i++;
                    break;
                case "--ledger" when i + 1 < args.Length:
                    kept = args[++i];
                    break;
                case "--postgres" when i + 1 < args.Length:
                    postgres = args[++i];
                    break;
                case "--browser":
                    browser = true;
                    break;
                default:
                    Console.Error.WriteLine($"dashboard-load: unknown argument '{args[i]}'; allowed: --records N, --runs R, --browser, --ledger FILE, --postgres CONNECTION_STRING");
                    return false;
            }
        }
        return true;
    }

    private static TimeSpan _cpu = Process.GetCurrentProcess().TotalProcessorTime;

    private static void Start(Stopwatch clock)
    {
        _cpu = Process.GetCurrentProcess().TotalProcessorTime;
        clock.Restart();
    }

    // Wall time, and the CPU time this process used since the last line: on a shared, loaded machine the CPU time is the steadier figure.
    private static void Report(string step, long count, TimeSpan elapsed, string unit = "records")
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{step}: {elapsed.TotalMilliseconds:0} ms wall, {(cpu - _cpu).TotalMilliseconds:0} ms CPU ({count:N0} {unit})"));
    }
}
