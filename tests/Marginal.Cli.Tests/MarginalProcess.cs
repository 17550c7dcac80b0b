using System.Diagnostics;

namespace Marginal.Cli.Tests;

/// <summary>Runs the real <c>marginal</c> executable as a child process, as a user would.</summary>
internal static class MarginalProcess
{
    /// <summary>The built <c>marginal.dll</c>, run with <c>dotnet</c>.</summary>
    public static readonly string Path = System.IO.Path.Combine(AppContext.BaseDirectory, "marginal.dll");

    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout, await stderr);
    }
}
