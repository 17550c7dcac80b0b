using System.Collections.Concurrent;
using Marginal.Core.Tenancy;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Hosting;

/// <summary>
/// Checks the virtual key of every <c>/v1</c> request (<c>server.auth: keys</c>) and attaches it to the request, so the
/// request is attributed to the key's tenant. A missing, malformed, unknown, revoked or expired key gets 401 in
/// OpenAI's format. Keys are looked up by their public id and cached for <see cref="CacheFor"/>, so a key revoked by
/// another process (the CLI) is refused within that time; one revoked through the admin API is refused at once, on every
/// node of a cluster that shares Redis (<see cref="Cluster.ClusterChanges"/>).
/// </summary>
internal sealed class KeyAuthentication(IKeyStore keys, TimeProvider time)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);
    private const string ItemKey = "marginal.key";

    private readonly ConcurrentDictionary<string, (VirtualKey? Key, DateTimeOffset Fetched)> _cache = new(StringComparer.Ordinal);

    /// <summary>The key the request was authenticated with; null when the server runs without keys.</summary>
    public static VirtualKey? KeyOf(HttpContext http) => http.Items.TryGetValue(ItemKey, out var key) ? key as VirtualKey : null;

    /// <summary>Forgets what is cached of key <paramref name="id"/> (after a revocation here).</summary>
    public void Forget(string id) => _cache.TryRemove(id, out _);

    /// <summary>Forgets every cached key (after this node may have missed revocations made on others).</summary>
    public void ForgetAll() => _cache.Clear();

    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (!http.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal))
        {
            await next(http);
            return;
        }
        var header = http.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            await RefuseAsync(http, "You didn't provide an API key. Send it in the Authorization header as 'Bearer YOUR_KEY'.", "missing_api_key");
            return;
        }
        if (!KeyIssuer.TryParse(header.AsSpan(7).Trim(), out var id, out var secret))
        {
            await RefuseAsync(http, "Incorrect API key provided: it is not a Marginal key (mk-…).", "invalid_api_key");
            return;
        }
        var key = await FindAsync(id, http.RequestAborted);
        var now = time.GetUtcNow();
        if (key is null || !KeyIssuer.Verify(key, secret))
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

    private async ValueTask<VirtualKey?> FindAsync(string id, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(id, out var cached) && now - cached.Fetched < CacheFor)
        {
            return cached.Key;
        }
        var key = await keys.FindKeyAsync(id, cancellationToken);
        _cache[id] = (key, now);
        return key;
    }

    private static Task RefuseAsync(HttpContext http, string message, string code) =>
        OpenAIErrors.WriteAsync(http, StatusCodes.Status401Unauthorized, message, "invalid_request_error", code);
}
