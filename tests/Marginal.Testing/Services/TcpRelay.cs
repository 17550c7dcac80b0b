using System.Net;
using System.Net.Sockets;

namespace Marginal.Testing.Services;

/// <summary>
/// A TCP relay on a free port of 127.0.0.1 in front of a real server (e.g. <see cref="RedisServer"/>), so a test can
/// cut one client off while the server and its other clients carry on: <see cref="Cut"/> closes every connection
/// through the relay and closes each new one at once, as a network partition between that client and the server
/// would; <see cref="Restore"/> lets connections through again. With <see cref="CloseIdleAfter"/> it closes every
/// connection that carried no byte either way for that long, as servers and proxies that drop idle keep-alive
/// connections do, without telling the client beforehand.
/// </summary>
public sealed class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _targetHost;
    private readonly int _targetPort;
    private readonly Lock _lock = new();
    private readonly List<TcpClient> _open = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _accepting;
    private bool _cut;

    private TcpRelay(string target)
    {
        var colon = target.LastIndexOf(':');
        _targetHost = target[..colon];
        _targetPort = int.Parse(target[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary><c>127.0.0.1:port</c> of the relay, for the client to connect to instead of the server.</summary>
    public string Endpoint => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Starts a relay to <paramref name="target"/> (<c>host:port</c>).</summary>
    public static TcpRelay Start(string target) => new(target);

    /// <summary>Closes every connection through the relay; until <see cref="Restore"/>, a new one is closed as soon as it is accepted.</summary>
    public void Cut()
    {
        lock (_lock)
        {
            _cut = true;
            foreach (var client in _open)
            {
                client.Dispose();
            }
            _open.Clear();
        }
    }

    /// <summary>When set, a connection idle (no byte either way) for this long is closed on both sides.</summary>
    public TimeSpan? CloseIdleAfter { get; set; }

    /// <summary>Lets new connections through again.</summary>
    public void Restore()
    {
        lock (_lock)
        {
            _cut = false;
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception error) when (error is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        var server = new TcpClient();
        lock (_lock)
        {
            if (_cut)
            {
                client.Dispose();
                server.Dispose();
                return;
            }
            _open.Add(client);
            _open.Add(server);
        }
        try
        {
            await server.ConnectAsync(_targetHost, _targetPort, _stopping.Token).ConfigureAwait(false);
            var lastByte = Environment.TickCount64;
            // A request went up and no answer has come down yet: the connection is busy, not idle.
            var awaitingAnswer = false;
            var up = PumpAsync(client.GetStream(), server.GetStream(), () =>
            {
                Volatile.Write(ref awaitingAnswer, true);
                Volatile.Write(ref lastByte, Environment.TickCount64);
            });
            var down = PumpAsync(server.GetStream(), client.GetStream(), () =>
            {
                Volatile.Write(ref awaitingAnswer, false);
                Volatile.Write(ref lastByte, Environment.TickCount64);
            });
            var pumps = Task.WhenAny(up, down);
            while (CloseIdleAfter is { } idle && !pumps.IsCompleted)
            {
                var left = idle.TotalMilliseconds - (Environment.TickCount64 - Volatile.Read(ref lastByte));
                if (left <= 0 && client.Available == 0 && !Volatile.Read(ref awaitingAnswer))
                {
                    break;
                }
                if (left <= 0)
                {
                    // In use (bytes of a request waiting, or a request being answered), as a server would see it.
                    Volatile.Write(ref lastByte, Environment.TickCount64);
                    continue;
                }
                await Task.WhenAny(pumps, Task.Delay(TimeSpan.FromMilliseconds(left), _stopping.Token)).ConfigureAwait(false);
            }
            await (CloseIdleAfter is null ? pumps : Task.CompletedTask).ConfigureAwait(false);
        }
        catch (Exception error) when (error is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // Cut, or one side closed.
        }
        finally
        {
            lock (_lock)
            {
                _open.Remove(client);
                _open.Remove(server);
            }
            client.Dispose();
            server.Dispose();
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, Action moved)
    {
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer, _stopping.Token).ConfigureAwait(false)) > 0)
        {
            moved();
            await to.WriteAsync(buffer.AsMemory(0, read), _stopping.Token).ConfigureAwait(false);
            moved();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        Cut();
        await _accepting.ConfigureAwait(false);
        _stopping.Dispose();
    }
}
