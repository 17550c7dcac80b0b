using Npgsql;

namespace Marginal.Testing.Services;

/// <summary>
/// A PostgreSQL server for tests. With <c>MARGINAL_TEST_POSTGRES</c> set (a connection string to a server the caller
/// runs, as <c>./test.sh</c> does) that server is used; otherwise a throwaway instance is started on a free port of
/// 127.0.0.1 with its data in a temp directory (as the <c>postgres</c> user when running as root) and removed at
/// dispose. When neither is possible the start fails with a message saying what to install: tests never skip silently.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string EnvironmentVariable = "MARGINAL_TEST_POSTGRES";

    private static readonly Lazy<Task<PostgresServer>> SharedServer = new(() => StartAsync(useEnvironment: true));

    private readonly string? _dataDirectory;
    private readonly string? _pgCtl;
    private readonly string? _user;

    private PostgresServer(string connectionString, string? dataDirectory, string? pgCtl, string? user)
    {
        ConnectionString = connectionString;
        _dataDirectory = dataDirectory;
        _pgCtl = pgCtl;
        _user = user;
    }

    /// <summary>Connects to the maintenance database <c>postgres</c> as a superuser.</summary>
    public string ConnectionString { get; }

    /// <summary>True when this process started the server (so it may stop and restart it).</summary>
    public bool IsOwned => _dataDirectory is not null;

    /// <summary>One server for the whole test run, stopped when the process exits.</summary>
    public static Task<PostgresServer> Shared => SharedServer.Value;

    /// <summary>
    /// Starts a server of the test's own (always a throwaway instance unless <paramref name="useEnvironment"/>), e.g.
    /// for a test that stops it.
    /// </summary>
    public static async Task<PostgresServer> StartAsync(bool useEnvironment = false)
    {
        if (useEnvironment && Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } external)
        {
            return new PostgresServer(external, null, null, null);
        }
        string[] debian = [.. Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")) : []];
        var initdb = ServiceProcess.Find("initdb", debian);
        var pgCtl = ServiceProcess.Find("pg_ctl", debian);
        if (initdb is null || pgCtl is null)
        {
            throw new InvalidOperationException(
                $"PostgreSQL is needed for this test: install it (apt-get install -y postgresql) so initdb and pg_ctl are on PATH or under /usr/lib/postgresql/*/bin, or set {EnvironmentVariable} to a connection string");
        }
        var user = ServiceProcess.IsRoot ? "postgres" : null;
        var root = Directory.CreateTempSubdirectory("marginal-pg-").FullName;
        if (user is not null)
        {
            await ServiceProcess.RunAsync("chown", ["-R", user, root]).ConfigureAwait(false);
        }
        var data = Path.Combine(root, "data");
        await ServiceProcess.RunAsync(initdb, ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"], user).ConfigureAwait(false);
        var port = ServiceProcess.FreePort();
        var server = new PostgresServer(
            $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Timeout=5;Command Timeout=30", root, pgCtl, user);
        await server.StartAgainAsync(port).ConfigureAwait(false);
        if (!useEnvironment)
        {
            return server;
        }
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return server;
    }

    private int Port => new NpgsqlConnectionStringBuilder(ConnectionString).Port;

    /// <summary>Starts the (owned, stopped) server again on its port.</summary>
    public Task StartAgainAsync() => StartAgainAsync(Port);

    private Task StartAgainAsync(int port)
    {
        EnsureOwned();
        var data = Path.Combine(_dataDirectory!, "data");
        return ServiceProcess.RunAsync(_pgCtl!, [
            "-D", data, "-l", Path.Combine(_dataDirectory!, "postgres.log"), "-w", "-t", "60",
            "-o", $"-p {port} -k {_dataDirectory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            "start"], _user);
    }

    /// <summary>Stops the (owned) server at once, as a crash would: open connections break.</summary>
    public Task StopAsync()
    {
        EnsureOwned();
        return ServiceProcess.RunAsync(_pgCtl!, ["-D", Path.Combine(_dataDirectory!, "data"), "-m", "immediate", "-w", "stop"], _user);
    }

    private void EnsureOwned()
    {
        if (!IsOwned)
        {
            throw new InvalidOperationException($"the PostgreSQL server from {EnvironmentVariable} is not this test's to stop or start");
        }
    }

    /// <summary>Creates a new, empty database and returns a connection string for it.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"marginal_{Guid.NewGuid():N}";
        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            await connection.OpenAsync().ConfigureAwait(false);
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name }.ConnectionString;
    }

    public async ValueTask DisposeAsync()
    {
        if (!IsOwned || !Directory.Exists(_dataDirectory))
        {
            return;
        }
        try
        {
            await ServiceProcess.RunAsync(_pgCtl!, ["-D", Path.Combine(_dataDirectory!, "data"), "-m", "immediate", "stop"], _user).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // Already stopped.
        }
        Directory.Delete(_dataDirectory!, recursive: true);
    }
}
