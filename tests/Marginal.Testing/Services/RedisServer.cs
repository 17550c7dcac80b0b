using System.Diagnostics;
using System.Net.Sockets;

namespace Marginal.Testing.Services;

/// <summary>
/// A Redis server for tests. With <c>MARGINAL_TEST_REDIS</c> set (<c>host:port</c> of a server the caller runs, as
/// <c>./test.sh</c> does) that server is used; otherwise a throwaway <c>redis-server</c> is started on a free port of
/// 127.0.0.1 without persistence and killed at dispose. When neither is possible the start fails with a message saying
/// what to install: tests never skip silently.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    public const string EnvironmentVariable = "MARGINAL_TEST_REDIS";

    private static readonly Lazy<Task<RedisServer>> SharedServer = new(() => StartAsync(useEnvironment: true));

    private readonly string? _program;
    private Process? _process;

    private RedisServer(string endpoint, string? program)
    {
        Endpoint = endpoint;
        _program = program;
    }

    /// <summary><c>127.0.0.1:port</c>, a StackExchange.Redis configuration string.</summary>
    public string Endpoint { get; }

    /// <summary>One server for the whole test run, stopped when the process exits.</summary>
    public static Task<RedisServer> Shared => SharedServer.Value;

    /// <summary>Starts a server of the test's own (unless <paramref name="useEnvironment"/> and the variable is set).</summary>
    public static async Task<RedisServer> StartAsync(bool useEnvironment = false)
    {
        if (useEnvironment && Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } external)
        {
            return new RedisServer(external, null);
        }
        var program = ServiceProcess.Find("redis-server", "/usr/bin", "/usr/local/bin")
            ?? throw new InvalidOperationException($"Redis is needed for this test: install it (apt-get install -y redis-server) or set {EnvironmentVariable} to host:port");
        var server = new RedisServer($"127.0.0.1:{ServiceProcess.FreePort()}", program);
        await server.StartAgainAsync().ConfigureAwait(false);
        if (useEnvironment)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        }
        return server;
    }

    private int Port => int.Parse(Endpoint[(Endpoint.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Starts the (owned, stopped) server again on its port and waits until it accepts connections.</summary>
    public async Task StartAgainAsync()
    {
        if (_program is null)
        {
            throw new InvalidOperationException($"the Redis server from {EnvironmentVariable} is not this test's to start");
        }
        _process = ServiceProcess.Start(_program, ["--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", Path.GetTempPath()]);
        _ = _process.StandardOutput.ReadToEndAsync();
        _ = _process.StandardError.ReadToEndAsync();
        for (var i = 0; i < 200; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", Port).ConfigureAwait(false);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }
        }
        throw new InvalidOperationException($"redis-server did not listen on {Endpoint} within 10 s");
    }

    /// <summary>Kills the (owned) server, as a crash would.</summary>
    public void Stop()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit();
        }
        _process?.Dispose();
        _process = null;
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }
}
