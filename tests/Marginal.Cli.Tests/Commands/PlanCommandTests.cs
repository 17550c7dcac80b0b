using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Marginal.Cli.Tests.Commands;

/// <summary>Runs <c>marginal plan</c> as a child process on the shipped sample scenarios.</summary>
public sealed class PlanCommandTests
{
    private static readonly string Marginal = Path.Combine(AppContext.BaseDirectory, "marginal.dll");

    private static string Sample(string name) => MarginalProcess.SampleScenario(name);

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Marginal);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task Plan_SampleWithCompareAndHtml_PrintsPortfolioAndWritesReport()
    {
        var html = Path.Combine(Path.GetTempPath(), $"marginal-plan-{Guid.NewGuid():N}.html");
        try
        {
            var (exit, stdout, stderr) = await RunAsync("plan", Sample("own-base-burst-cloud"), "--compare", "startup-rent-everything", "--html", html, "--no-sensitivity");

            Assert.True(exit == 0, stderr);
            Assert.Contains("Recommended portfolio", stdout, StringComparison.Ordinal);
            Assert.Contains("cost per 1M output tokens", stdout, StringComparison.Ordinal);
            Assert.Contains("startup-rent-everything", stdout, StringComparison.Ordinal);
            Assert.Contains("runway", stdout, StringComparison.Ordinal);
            Assert.Contains("LP bound $", stdout, StringComparison.Ordinal); // with every plan: its bound and gaps
            Assert.Contains("optimality gap", stdout, StringComparison.Ordinal);
            var report = await File.ReadAllTextAsync(html);
            Assert.Contains("LP bound $", report, StringComparison.Ordinal);
            Assert.Contains("Chart.js v4.5.1", report, StringComparison.Ordinal);
            Assert.Contains("<canvas id=\"mix\">", report, StringComparison.Ordinal);
            Assert.DoesNotContain("<script src=", report, StringComparison.Ordinal); // self-contained
        }
        finally
        {
            File.Delete(html);
        }
    }

    [Fact]
    public async Task Plan_FormatJson_ParsesWithPortfolioAndMonths()
    {
        var (exit, stdout, stderr) = await RunAsync("plan", Sample("dedicated-deal"), "--format", "json", "--no-sensitivity");

        Assert.True(exit == 0, stderr);
        var json = JsonNode.Parse(stdout)!;
        Assert.Equal(24, json["plan"]!["months"]!.AsArray().Count);
        var headline = json["plan"]!["headline"]!;
        Assert.True(headline["lp_bound"]!.GetValue<decimal>() <= headline["net_present_cost"]!.GetValue<decimal>());
        Assert.True(headline["lp_gap"]!.GetValue<double>() >= 0);
        Assert.True(headline["optimality_gap"]!.GetValue<double>() >= 0);
        Assert.Contains(json["plan"]!["portfolio"]!.AsArray(), o => o!["name"]!.GetValue<string>() == "dedicated-h200" && o["peak_gpus"]!.GetValue<double>() >= 64);
    }

    [Fact]
    public async Task Plan_BadScenario_OneLinePerProblemAndExitCode2()
    {
        var path = Path.Combine(Path.GetTempPath(), $"marginal-bad-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, "horizon_months: 500\nresolution: weekly\n");
        try
        {
            var (exit, stdout, stderr) = await RunAsync("plan", path);

            Assert.Equal(2, exit);
            Assert.Equal("", stdout);
            var lines = stderr.Trim().Split('\n');
            Assert.Equal(
                [
                    $"{path}: horizon_months: 500 is out of range (allowed: 1 to 120)",
                    $"{path}: resolution: 'weekly' is not allowed (allowed: day_profile, hourly)",
                    $"{path}: workloads: none defined; at least one is needed",
                    $"{path}: supply: none defined; at least one supply option is needed",
                ],
                lines);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// The cases that were accepted or reported under another field's name: each is refused with exit 2 and one line
    /// naming the file, the field's path and what it allows (every numeric field is covered in the planner's
    /// FieldValidationTests; these check the command end to end).
    /// </summary>
    [Theory]
    [InlineData("capex_per_gpu: -1000", "supply.own.capex_per_gpu: -1000 is out of range (allowed: USD per GPU, above 0)")]
    [InlineData("server_overhead: -0.5", "supply.own.server_overhead: -0.5 is out of range (allowed: a share of the accelerator's price, 0 or more)")]
    [InlineData("residual_fraction: 1.5", "supply.own.residual_fraction: 1.5 is out of range (allowed: a share of the purchase price, 0 to below 1)")]
    [InlineData("lifetime_years: 0.05", "supply.own.lifetime_years: 0.05 is out of range (allowed: years, 0.0833 (one month) to 30)")]
    [InlineData("power_price_per_kwh: -0.1", "supply.own.power_price_per_kwh: -0.1 is out of range (allowed: USD per kWh, 0 or more)")]
    [InlineData("pue: 0.5", "supply.own.pue: 0.5 is out of range (allowed: power usage effectiveness, 1 or more)")]
    [InlineData("ops_per_gpu_month: -50", "supply.own.ops_per_gpu_month: -50 is out of range (allowed: USD per GPU-month, 0 or more)")]
    [InlineData("API input_per_m: -0.1", "supply.api.input_per_m: -0.1 is out of range (allowed: USD per million tokens, 0 or more)")]
    public async Task Plan_FieldOutOfRange_ExitCode2OneLineNamingFileFieldAndRange(string line, string expected)
    {
        var path = Path.Combine(Path.GetTempPath(), $"marginal-field-{Guid.NewGuid():N}.yaml");
        var api = line.StartsWith("API ", StringComparison.Ordinal);
        await File.WriteAllTextAsync(path, $$"""
            start: 2027-01
            horizon_months: 3
            models:
              m: { parameters_b: 8, kv_bytes_per_token: 131072 }
            workloads:
              chat: { model: m, input_tokens_per_month: 3000000000, output_tokens_per_month: 1000000000 }
            supply:
              own:
                kind: own
                accelerator: h100-sxm
                source: test
                as_of: "2026-11"
                {{(api ? "" : line)}}
              api:
                kind: api
                output_per_m: 0.3
                source: test
                as_of: "2026-11"
                {{(api ? line[4..] : "")}}
            """);
        try
        {
            var (exit, stdout, stderr) = await RunAsync("plan", path);

            Assert.Equal(2, exit);
            Assert.Equal("", stdout);
            Assert.Equal($"{path}: {expected}", stderr.Trim());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Plan_MissingCompareScenario_ExitCode2NoStackTrace()
    {
        var (exit, _, stderr) = await RunAsync("plan", Sample("dedicated-deal"), "--compare", "no-such-scenario");

        Assert.Equal(2, exit);
        Assert.Contains("no-such-scenario", stderr, StringComparison.Ordinal);
        Assert.Contains("cannot read the file", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }
}
