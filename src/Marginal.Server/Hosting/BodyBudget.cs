using Marginal.Server.Wire;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Marginal.Server.Hosting;

/// <summary>
/// Bytes of large request bodies in flight (<c>server.max_body_bytes_in_flight</c>). A body is read, parsed into
/// strings (twice its UTF-8 size), turned into messages and serialised again for the provider while its request
/// runs, so memory grows with the bytes of the bodies being served, not with their number; unbounded, 8 clients sending
/// 7 MB bodies took a node past 2 GB. Each POST body of at least <see cref="LargeBody"/> bytes (a body of unknown length
/// counts as the largest allowed) holds its length of this budget until its answer is written; a body that does not fit
/// waits its turn, first come first served, for at most <see cref="MaxWait"/>, then gets 503 with Retry-After. Small
/// bodies (nearly every chat request) never wait.
/// </summary>
internal sealed class BodyBudget(long capacity, TimeProvider time)
{
    /// <summary>Bodies under this size pass without counting: their copies are small whatever their number.</summary>
    public const long LargeBody = 64 * 1024;

    /// <summary>Longest wait for room before the request is refused with 503.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(30);

    private readonly Lock _lock = new();
    private readonly LinkedList<(long Bytes, TaskCompletionSource Granted)> _queue = new();
    private long _available = capacity;

    public long Capacity { get; } = capacity;

    /// <summary>Requests waiting for room now.</summary>
    public int Waiting
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>
    /// Takes <paramref name="bytes"/> (at most <see cref="Capacity"/>) of the budget: true once taken, false after
    /// <see cref="MaxWait"/> without room. Cancelled with <paramref name="cancellationToken"/> (the client left).
    /// </summary>
    public async ValueTask<bool> AcquireAsync(long bytes, CancellationToken cancellationToken)
    {
        LinkedListNode<(long Bytes, TaskCompletionSource Granted)> node;
        lock (_lock)
        {
            if (_queue.Count == 0 && bytes <= _available)
            {
                _available -= bytes;
                return true;
            }
            node = _queue.AddLast((bytes, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)));
        }
        using var timeout = new CancellationTokenSource(MaxWait, time);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        using (either.Token.Register(() => Abandon(node)))
        {
            try
            {
                await node.Value.Granted.Task;
                return true;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return false;
            }
        }
    }

    /// <summary>Gives back what <see cref="AcquireAsync"/> took.</summary>
    public void Release(long bytes)
    {
        lock (_lock)
        {
            _available += bytes;
            GrantWaiters();
        }
    }

    private void Abandon(LinkedListNode<(long Bytes, TaskCompletionSource Granted)> node)
    {
        lock (_lock)
        {
            // Already granted: the waiter owns its bytes and releases them as usual.
            if (node.List is null)
            {
                return;
            }
            _queue.Remove(node);
            node.Value.Granted.TrySetCanceled();
            // A large waiter at the head may have been holding back smaller ones that fit now.
            GrantWaiters();
        }
    }

    private void GrantWaiters()
    {
        while (_queue.First is { } first && first.Value.Bytes <= _available)
        {
            _queue.RemoveFirst();
            _available -= first.Value.Bytes;
            first.Value.Granted.TrySetResult();
        }
    }

    /// <summary>The middleware: holds a large POST body's bytes of the budget until the request has been answered.</summary>
    public async Task InvokeAsync(HttpContext http, RequestDelegate next, long maxBodyBytes)
    {
        var length = http.Request.ContentLength
            ?? (http.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true ? maxBodyBytes : 0);
        if (!HttpMethods.IsPost(http.Request.Method) || length < LargeBody)
        {
            await next(http);
            return;
        }
        var bytes = Math.Min(length, Capacity);
        if (!await AcquireAsync(bytes, http.RequestAborted))
        {
            http.Response.Headers.RetryAfter = "1";
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status503ServiceUnavailable,
                "The gateway is busy with other large request bodies (server.max_body_bytes_in_flight); retry shortly.", "server_error", "gateway_busy");
            return;
        }
        try
        {
            await next(http);
        }
        finally
        {
            Release(bytes);
        }
    }
}
