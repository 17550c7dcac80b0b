using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Marginal.Testing.Services;

/// <summary>Runs the programs that throwaway service instances need, and finds their binaries and free ports.</summary>
internal static class ServiceProcess
{
    /// <summary>True when this process runs as root (PostgreSQL refuses to run as root).</summary>
    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The full path of <paramref name="program"/> on PATH or in <paramref name="extraDirectories"/>; null when absent.</summary>
    public static string? Find(string program, params string[] extraDirectories)
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return path.Concat(extraDirectories)
            .Select(directory => System.IO.Path.Combine(directory, program))
            .FirstOrDefault(File.Exists);
    }

    /// <summary>Runs a program to its end (as <paramref name="user"/> through runuser when given); throws with its output when it fails.</summary>
    public static async Task RunAsync(string program, IEnumerable<string> arguments, string? user = null, TimeSpan? timeout = null)
    {
        using var process = Start(program, arguments, user);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cancel.Token).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} exited with {process.ExitCode}: {await stderr.ConfigureAwait(false)}{await stdout.ConfigureAwait(false)}");
        }
    }

    /// <summary>Starts a program with redirected output (as <paramref name="user"/> through runuser when given).</summary>
    public static Process Start(string program, IEnumerable<string> arguments, string? user = null)
    {
        var info = new ProcessStartInfo(user is null ? program : "runuser") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (user is not null)
        {
            info.ArgumentList.Add("-u");
            info.ArgumentList.Add(user);
            info.ArgumentList.Add("--");
            info.ArgumentList.Add(program);
        }
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        return Process.Start(info) ?? throw new InvalidOperationException($"cannot start {program}");
    }
}
