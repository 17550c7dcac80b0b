using Marginal.Server.Composition;
using System.Globalization;
using Marginal.Core.Ledger;
using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;
using Marginal.Storage.Sqlite;
using Microsoft.AspNetCore.Builder;
using Microsoft.Playwright;

namespace Marginal.Dashboard.Tests;

/// <summary>The dashboard in a real browser (Debian's Chromium, headless) against a real server on loopback with a seeded ledger.</summary>
public sealed class DashboardBrowserTests : IAsyncLifetime
{
    private const string AdminVariable = "MARGINAL_TEST_BROWSER_ADMIN_KEY";
    private const string AdminKey = "browser-test-admin-key-0123456789abcdef";
    private static readonly string[] Charts = ["money", "tokens", "cache", "utilisation", "waterfall", "fixed-variable", "routing", "providers", "marginal"];
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("marginal-dashboard-");
    private WebApplication _app = null!;

    private static UsageRecord Record(string id, DateTimeOffset time, string tenant, string model, string provider, string capacity, long input, long output,
        decimal cost, decimal? revenue, string cache, string route, string levers) => new(
        Id: id, Time: time, Tenant: tenant, KeyId: "k", RequestedModel: model, ServedModel: model, Provider: provider, CapacitySource: capacity, Status: "ok",
        Streamed: false, InputTokens: input, CachedInputTokens: 0, CacheWriteTokens: 0, OutputTokens: output, ReasoningTokens: 0, UsageSource: "reported",
        LatencyMs: 100, TimeToFirstTokenMs: null, CostUsd: cost, MarginalCostUsd: cost, RevenueUsd: revenue, CacheOutcome: cache, RouteReason: route,
        Levers: levers, SavingsUsd: null, Attempts: 1);

    public async Task InitializeAsync()
    {
        var ledger = Path.Combine(_dir.FullName, "ledger.db");
        var t0 = DateTimeOffset.UtcNow.AddHours(-3);
        await using (var store = SqliteStore.Open(ledger))
        {
            // Three requests, 0.0105 USD of cost and 0.03 USD of revenue in all.
            await store.AppendAsync(
            [
                Record("a", t0, "acme", "gpt-test", "openai", "api", 1000, 500, 0.004m, 0.01m, "miss", "explicit", "cache=0.001"),
                Record("b", t0.AddHours(1), "acme", "gpt-test", "openai", "api", 500, 200, 0.0015m, 0.005m, "hit-exact", "explicit", "cache=0.002"),
                Record("c", t0.AddHours(2), "globex", "gpt-big", "anthropic", "api", 2000, 1000, 0.005m, 0.015m, "miss", "policy", "routing=0.003"),
            ]);
        }
        await File.WriteAllTextAsync(Path.Combine(_dir.FullName, "marginal.yaml"), $"""
            server:
              auth: none
              admin_key_env: {AdminVariable}
            storage:
              path: "{ledger}"
            """);
        Environment.SetEnvironmentVariable(AdminVariable, AdminKey);
        _app = MarginalServer.Create(ConfigLoader.Load(Path.Combine(_dir.FullName, "marginal.yaml")), urls: "http://127.0.0.1:0");
        await _app.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task Dashboard_SeededLedger_ShowsHeadlineFiguresAndRendersEveryChart()
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1800 } });
        // The sign-in page answers 401 by design (Chromium reports that as a console error), so listening starts after it.
        await page.GotoAsync($"{_app.Urls.First()}/dashboard");
        await page.FillAsync("input[name='key']", AdminKey);
        var problems = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                problems.Add(message.Text);
            }
        };
        page.PageError += (_, error) => problems.Add(error);

        await page.ClickAsync("button[type='submit']");
        await page.WaitForSelectorAsync("#dashboard[data-rendered='true']", new PageWaitForSelectorOptions { Timeout = 15_000 });

        Assert.Equal("/dashboard", new Uri(page.Url).AbsolutePath);
        Assert.Equal("3", await page.InnerTextAsync("[data-figure='requests'] .value"));
        Assert.Equal("$0.0105", await page.InnerTextAsync("[data-figure='cost'] .value"));
        Assert.Equal("$0.03", await page.InnerTextAsync("[data-figure='revenue'] .value"));
        // (0.03 − 0.0105) ÷ 0.03 = 65%
        Assert.Equal("65.0%", await page.InnerTextAsync("[data-figure='gross-margin'] .value"));
        Assert.Equal("$0.006", await page.InnerTextAsync("[data-figure='savings'] .value"));
        foreach (var chart in Charts)
        {
            // A chart that drew anything (axes, bars, arcs) has non-transparent pixels on its canvas.
            var painted = await page.EvaluateAsync<int>($$"""
                () => {
                  const c = document.querySelector("canvas[data-chart='{{chart}}']");
                  if (!c || c.width === 0 || c.height === 0) return 0;
                  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0;
                  for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++;
                  return n;
                }
                """);
            Assert.True(painted > 100, string.Create(CultureInfo.InvariantCulture, $"chart '{chart}' painted {painted} pixels"));
        }
        Assert.Empty(problems);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(AppContext.BaseDirectory, "dashboard.png"), FullPage = true });
    }
}
