using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Marginal.Cli.Tests;

/// <summary>Runs the real <c>marginal</c> executable as a child process, as a user would, in a working directory of the test's.</summary>
public static class MarginalProcess
{
    private static readonly string Marginal = Path.Combine(AppContext.BaseDirectory, "marginal.dll");

    private static ProcessStartInfo Start(string workingDirectory, IReadOnlyDictionary<string, string>? environment, string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        start.ArgumentList.Add(Marginal);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }
        return start;
    }

    /// <summary>Runs a command to its end.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string workingDirectory, params string[] args)
    {
        using var process = Process.Start(Start(workingDirectory, null, args))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Starts <c>marginal serve</c> on a free loopback port and waits until it is ready. The caller kills it.</summary>
    public static async Task<(Process Process, HttpClient Http)> ServeAsync(string workingDirectory, string configPath, IReadOnlyDictionary<string, string>? environment = null)
    {
        var port = FreePort();
        var process = Process.Start(Start(workingDirectory, environment, ["serve", "--config", configPath, "--urls", $"http://127.0.0.1:{port}"]))!;
        // Drain the pipes so a chatty server never blocks on a full one.
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        for (var i = 0; i < 300; i++)
        {
            try
            {
                if ((await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK)
                {
                    return (process, http);
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        process.Kill(entireProcessTree: true);
        throw new TimeoutException("marginal serve did not become ready in 30 s");
    }

    /// <summary>The full path of <c>samples/scenarios/NAME.yaml</c>.</summary>
    public static string SampleScenario(string name)
    {
        // The tests run from tests/Marginal.Cli.Tests/bin/<configuration>/net10.0; the samples are at the repository root.
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "samples", "scenarios")))
        {
            dir = dir.Parent;
        }
        return Path.Combine(dir!.FullName, "samples", "scenarios", name + ".yaml");
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
