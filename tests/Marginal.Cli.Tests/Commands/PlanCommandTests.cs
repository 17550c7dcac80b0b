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
            var report = await File.ReadAllTextAsync(html);
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
