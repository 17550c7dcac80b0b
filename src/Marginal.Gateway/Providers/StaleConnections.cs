using System.Net;
using System.Net.Http;
using System.Net.Sockets;

namespace Marginal.Gateway.Providers;

/// <summary>
/// Keeps a request off an upstream connection the server has already closed. Servers close keep-alive connections
/// without notice: after each answer (HTTP/1.0 without keep-alive, some inference servers) or after a short idle time
/// (uvicorn's 5 s, proxies). The pool learns of the close only when its own read of the connection completes, so a
/// request taken from the pool in between is written to a dead connection and fails. Each connection's stream checks
/// the socket before the first byte of each new request and, when the peer has closed it, fails without writing
/// anything (<see cref="StaleConnectionException"/>); <see cref="RetryHandler"/> then sends the request once more on
/// another connection. A request that failed after any of its bytes were written is never sent again: the upstream may
/// have read it.
/// <para>
/// A close can also arrive just after the next request went out, and that request cannot be sent again. So an upstream
/// seen closing a connection right after answering on it (within <see cref="AnswerCloseWindow"/>) is taken to close
/// after every answer, and from then on each request asks for <c>Connection: close</c>: every request gets a fresh
/// connection, none is sent on one being closed.
/// </para>
/// </summary>
internal sealed class StaleConnections
{
    /// <summary>A close this soon after the last answer on a connection means "closes after each answer", not "idle".</summary>
    public static readonly TimeSpan AnswerCloseWindow = TimeSpan.FromSeconds(1);

    private int _closesAfterAnswer;

    /// <summary>True once the upstream was seen closing a connection right after an answer.</summary>
    public bool ClosesAfterAnswer => Volatile.Read(ref _closesAfterAnswer) == 1;

    /// <summary>Opens the connection for <see cref="SocketsHttpHandler.ConnectCallback"/> with the check on its stream.</summary>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
            return new GuardedStream(socket, this);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>True when <paramref name="error"/> failed a request before any byte of it was written.</summary>
    public static bool NothingWritten(Exception error)
    {
        for (var inner = error; inner is not null; inner = inner.InnerException)
        {
            if (inner is StaleConnectionException)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Sends a request once more when it failed on a connection the upstream had closed, before any of it went out.</summary>
    public sealed class RetryHandler(StaleConnections connections) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (connections.ClosesAfterAnswer)
            {
                request.Headers.ConnectionClose = true;
            }
            try
            {
                return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException error) when (NothingWritten(error) && !cancellationToken.IsCancellationRequested)
            {
                // The pool has dropped the dead connection: this goes out on a live one or a new one.
                request.Headers.ConnectionClose = connections.ClosesAfterAnswer ? true : request.Headers.ConnectionClose;
                return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A connection's stream that refuses to start a request on a socket the peer has closed.</summary>
    private sealed class GuardedStream(Socket socket, StaleConnections connections) : NetworkStream(socket, ownsSocket: true)
    {
        private long _lastDataAt;

        // True before the first write and once the stream has read since its last write: the next write starts a
        // request (a new connection may have been closed too, by a server that drops connections idle from the start).
        private bool _readSinceWrite = true;

        public override int Read(Span<byte> buffer)
        {
            _readSinceWrite = true;
            return Seen(base.Read(buffer), buffer.Length);
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _readSinceWrite = true;
            return Seen(await base.ReadAsync(buffer, cancellationToken).ConfigureAwait(false), buffer.Length);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Check();
            base.Write(buffer);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Check();
            return base.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private void Check()
        {
            if (!_readSinceWrite)
            {
                return;
            }
            _readSinceWrite = false;
            // Readable with nothing to read: the peer's FIN (or RST) is already here; the connection is dead.
            if (Socket.Poll(0, SelectMode.SelectRead) && Socket.Available == 0)
            {
                Closed();
                throw new StaleConnectionException();
            }
        }

        // The pool reads ahead on an idle connection: an end of stream there is the upstream's close.
        private int Seen(int read, int asked)
        {
            if (read > 0)
            {
                Volatile.Write(ref _lastDataAt, Environment.TickCount64);
            }
            else if (asked > 0)
            {
                Closed();
            }
            return read;
        }

        private void Closed()
        {
            var lastData = Volatile.Read(ref _lastDataAt);
            if (lastData != 0 && Environment.TickCount64 - lastData < AnswerCloseWindow.TotalMilliseconds)
            {
                Interlocked.Exchange(ref connections._closesAfterAnswer, 1);
            }
        }
    }
}

/// <summary>The upstream had closed the pooled connection before the request's first byte was written.</summary>
internal sealed class StaleConnectionException() : IOException("The upstream closed this pooled connection before the request was sent on it.");
