using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Marginal.Cluster.Tests;

/// <summary>
/// One gateway node: the built <c>marginal serve</c> as a child process on a loopback port of its own, with the
/// environment that names the shared PostgreSQL and Redis. The last lines it printed are kept for failure messages.
/// </summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private static readonly string Marginal = Path.Combine(AppContext.BaseDirectory, "marginal.dll");

    private readonly string _config;
    private readonly IReadOnlyDictionary<string, string> _environment;
    private readonly Queue<string> _output = new();
    private Process? _process;

    public NodeProcess(string name, string config, IReadOnlyDictionary<string, string> environment)
    {
        Name = name;
        _config = config;
        _environment = environment;
        Port = FreePort();
        Http = new HttpClient { BaseAddress = BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
    }

    public string Name { get; }

    public int Port { get; }

    public Uri BaseUrl => new($"http://127.0.0.1:{Port}");

    public HttpClient Http { get; }

    /// <summary>What the node printed last (at most 40 lines).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output);
            }
        }
    }

    /// <summary>Starts the node (again, on the same port) and waits until <c>/readyz</c> answers.</summary>
    public async Task StartAsync()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetDirectoryName(_config)! };
        foreach (var arg in (string[])[Marginal, "serve", "--config", _config, "--urls", BaseUrl.ToString().TrimEnd('/')])
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in _environment)
        {
            start.Environment[name] = value;
        }
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        for (var i = 0; i < 600; i++)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"node {Name} exited at start ({_process.ExitCode}):\n{Output}");
            }
            try
            {
                if ((await Http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        throw new InvalidOperationException($"node {Name} was not ready within 60 s:\n{Output}");
    }

    /// <summary>Runs <c>marginal <paramref name="args"/> --config</c> with this node's config and environment, as an operator on the node would.</summary>
    public async Task<(int ExitCode, string Output)> RunCliAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetDirectoryName(_config)! };
        foreach (var arg in (string[])[Marginal, .. args, "--config", _config])
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var (name, value) in _environment)
        {
            start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>SIGKILL: the node dies at once, mid-request, as in a crash.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit();
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        Http.Dispose();
        return ValueTask.CompletedTask;
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.Enqueue(line);
            if (_output.Count > 40)
            {
                _output.Dequeue();
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
