using System.Collections.Concurrent;
using Marginal.Core.Tenancy;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Marginal.Server.Hosting;

/// <summary>
/// Checks the virtual key of every <c>/v1</c> request (<c>server.auth: keys</c>) and attaches it to the request, so the
/// request is attributed to the key's tenant. A missing, malformed, unknown, revoked or expired key gets 401 in
/// OpenAI's format. Keys are looked up by their public id and cached for <see cref="CacheFor"/>, so a key revoked by
/// another process (the CLI) is refused within that time; one revoked through the admin API is refused at once, on every
/// node of a cluster that shares Redis (<see cref="Cluster.ClusterChanges"/>).
/// <para>
/// The key store may be unreachable (PostgreSQL down). What was last read of a key then still decides (last known
/// good): every key is read in one query at start and every <see cref="KeySetEvery"/>, beside the lookups of the keys
/// in use, so a key valid before the outage keeps working through it on every node, including nodes it never reached.
/// After a failed lookup the store is left alone for <see cref="StoreRestFor"/>, so an outage costs no connect attempt
/// per request. A key this node has never read cannot be checked: 503 with Retry-After, never 500.
/// </para>
/// </summary>
internal sealed partial class KeyAuthentication(IKeyStore keys, TimeProvider time, ILogger? logger = null) : BackgroundService
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);

    /// <summary>How often the whole key set is read (the last-known-good copy for an outage).</summary>
    public static readonly TimeSpan KeySetEvery = TimeSpan.FromSeconds(30);

    /// <summary>How long lookups skip the store after one failed.</summary>
    public static readonly TimeSpan StoreRestFor = TimeSpan.FromSeconds(1);

    private const string ItemKey = "marginal.key";

    private readonly ConcurrentDictionary<string, (VirtualKey? Key, DateTimeOffset Fetched)> _cache = new(StringComparer.Ordinal);
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private long _storeRestsUntil;
    private int _storeDown;

    /// <summary>The key the request was authenticated with; null when the server runs without keys.</summary>
    public static VirtualKey? KeyOf(HttpContext http) => http.Items.TryGetValue(ItemKey, out var key) ? key as VirtualKey : null;

    /// <summary>Makes what is cached of key <paramref name="id"/> stale (after a revocation), kept only for an outage.</summary>
    public void Forget(string id)
    {
        if (_cache.TryGetValue(id, out var cached))
        {
            _cache.TryUpdate(id, (cached.Key, DateTimeOffset.MinValue), cached);
        }
    }

    /// <summary>Makes every cached key stale (after this node may have missed revocations made on others).</summary>
    public void ForgetAll()
    {
        foreach (var id in _cache.Keys)
        {
            Forget(id);
        }
    }

    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (!http.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal))
        {
            await next(http);
            return;
        }
        var header = http.Request.Headers.Authorization.ToString();
        // Anthropic's SDKs send the key in x-api-key; every other client as a bearer token.
        var given = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..] : http.Request.Headers["x-api-key"].ToString();
        if (given.Length == 0)
        {
            await RefuseAsync(http, "You didn't provide an API key. Send it in the Authorization header as 'Bearer YOUR_KEY' (or in x-api-key).", "missing_api_key");
            return;
        }
        if (!KeyIssuer.TryParse(given.AsSpan().Trim(), out var id, out var secret))
        {
            await RefuseAsync(http, "Incorrect API key provided: it is not a Marginal key (mk-…).", "invalid_api_key");
            return;
        }
        var (found, key) = await FindAsync(id, http.RequestAborted);
        var now = time.GetUtcNow();
        if (!found)
        {
            http.Response.Headers.RetryAfter = "5";
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status503ServiceUnavailable,
                "Your API key cannot be checked right now (the key store is unreachable and this node has not seen the key before). Retry shortly.",
                "api_error", "keys_unavailable");
        }
        else if (key is null || !KeyIssuer.Verify(key, secret))
        {
            await RefuseAsync(http, "Incorrect API key provided.", "invalid_api_key");
        }
        else if (key.Revoked is not null)
        {
            await RefuseAsync(http, $"The API key {key.Id} has been revoked.", "invalid_api_key");
        }
        else if (!key.IsLive(now))
        {
            await RefuseAsync(http, $"The API key {key.Id} expired at {key.Expires:u}.", "expired_api_key");
        }
        else
        {
            http.Items[ItemKey] = key;
            await next(http);
        }
    }

    /// <summary>Reads every key into the cache, as of now (a copy for when the store is unreachable).</summary>
    public async Task ReadKeySetAsync(CancellationToken cancellationToken)
    {
        var fetched = time.GetUtcNow();
        var all = await keys.ListKeysAsync(cancellationToken);
        foreach (var key in all)
        {
            _cache.AddOrUpdate(key.Id, (key, fetched), (_, cached) => cached.Fetched >= fetched ? cached : (key, fetched));
        }
        StoreAnswered();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(KeySetEvery, time);
        do
        {
            try
            {
                await ReadKeySetAsync(stoppingToken);
            }
            catch (Exception error) when (!stoppingToken.IsCancellationRequested)
            {
                StoreFailed(error);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    // Found false: the key could not be checked (store unreachable, never read here).
    private async ValueTask<(bool Found, VirtualKey? Key)> FindAsync(string id, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var known = _cache.TryGetValue(id, out var cached);
        if (known && now - cached.Fetched < CacheFor)
        {
            return (true, cached.Key);
        }
        if (now.ToUnixTimeMilliseconds() < Interlocked.Read(ref _storeRestsUntil))
        {
            return (known, cached.Key);
        }
        try
        {
            var key = await keys.FindKeyAsync(id, cancellationToken);
            _cache[id] = (key, now);
            StoreAnswered();
            return (true, key);
        }
        catch (Exception error) when (!cancellationToken.IsCancellationRequested)
        {
            StoreFailed(error);
            return (known, cached.Key);
        }
    }

    private void StoreFailed(Exception error)
    {
        Interlocked.Exchange(ref _storeRestsUntil, (time.GetUtcNow() + StoreRestFor).ToUnixTimeMilliseconds());
        if (Interlocked.Exchange(ref _storeDown, 1) == 0)
        {
            LogStoreDown(_logger, error.GetType().Name, error.Message);
        }
    }

    private void StoreAnswered()
    {
        if (Interlocked.Exchange(ref _storeDown, 0) == 1)
        {
            LogStoreBack(_logger);
        }
    }

    private static Task RefuseAsync(HttpContext http, string message, string code) =>
        OpenAIErrors.WriteAsync(http, StatusCodes.Status401Unauthorized, message, "invalid_request_error", code);

    [LoggerMessage(Level = LogLevel.Error, Message = "The key store cannot be read ({Error}: {Reason}); keys are checked against what this node last read of them until it is back")]
    private static partial void LogStoreDown(ILogger logger, string error, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The key store answers again; keys are checked against it")]
    private static partial void LogStoreBack(ILogger logger);
}
