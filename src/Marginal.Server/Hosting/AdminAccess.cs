using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Marginal.Gateway.Configuration;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Hosting;

/// <summary>
/// The admin key (<c>server.admin_key_env</c>) and who may present it: the admin API, the dashboard and, with
/// <c>server.metrics_auth: admin</c>, <c>/metrics</c> all check it here. Keys are compared as SHA-256 digests in
/// constant time. Failed attempts are counted per client address (<see cref="AdminThrottle"/>): past the limit the
/// address gets 429 with Retry-After, even with the right key, until its window ends, so guessing costs time.
/// </summary>
internal sealed class AdminAccess
{
    /// <summary>Shortest admin key accepted at start: 32 characters, such as the output of <c>openssl rand -hex 16</c>.</summary>
    public const int MinKeyLength = 32;

    private readonly byte[]? _digest;

    public AdminAccess(string? adminKey, AdminThrottle throttle)
    {
        Throttle = throttle;
        if (!string.IsNullOrEmpty(adminKey))
        {
            _digest = SHA256.HashData(Encoding.UTF8.GetBytes(adminKey));
            CookieValue = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(adminKey), "marginal-dashboard"u8));
        }
    }

    /// <summary>
    /// The admin key from the environment variable <c>server.admin_key_env</c> names; unset or empty is null (admin
    /// surfaces off). A key shorter than <see cref="MinKeyLength"/> is a <see cref="ConfigException"/>: a short key
    /// can be guessed, throttled or not.
    /// </summary>
    public static string? ReadKey(ServerConfig server)
    {
        var key = Environment.GetEnvironmentVariable(server.AdminKeyEnv);
        if (string.IsNullOrEmpty(key))
        {
            return null;
        }
        if (key.Length < MinKeyLength)
        {
            throw new ConfigException(string.Create(CultureInfo.InvariantCulture,
                $"server.admin_key_env: the admin key in ${server.AdminKeyEnv} is {key.Length} characters long; it must be at least {MinKeyLength} (e.g. openssl rand -hex 32)"));
        }
        return key;
    }

    public AdminThrottle Throttle { get; }

    /// <summary>False while no admin key is set: every admin surface refuses.</summary>
    public bool Enabled => _digest is not null;

    /// <summary>The dashboard cookie's value: HMAC-SHA256 of a fixed label under the admin key, so the cookie never holds the key.</summary>
    public string? CookieValue { get; }

    public bool IsKey(string presented) =>
        _digest is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), _digest);

    /// <summary>The <c>Authorization: Bearer …</c> value, or null when the header is absent or another scheme.</summary>
    public static string? BearerOf(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : null;
    }

    public bool CookieMatches(string cookie) =>
        CookieValue is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(cookie), Encoding.UTF8.GetBytes(CookieValue));

    /// <summary>
    /// Answers 429 with Retry-After when the caller's address has used up its failed attempts; true when it did (the
    /// caller stops there). Checked before the key, so a throttled address learns nothing about its guesses.
    /// </summary>
    public async ValueTask<bool> RefuseIfThrottledAsync(HttpContext http)
    {
        if (!Throttle.IsThrottled(http.Connection.RemoteIpAddress, out var retryAfter))
        {
            return false;
        }
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        await OpenAIErrors.WriteAsync(http, StatusCodes.Status429TooManyRequests, string.Create(CultureInfo.InvariantCulture,
            $"Too many failed admin key attempts from this address ({Throttle.MaxFailures} per {Throttle.Window.TotalSeconds:0} s); try again in {seconds} s."),
            "rate_limit_error", "admin_attempts_exceeded");
        return true;
    }

    /// <summary>
    /// Admits a call that carries the admin key as <c>Bearer</c>; otherwise answers (401 while no admin key is set or
    /// for a wrong or missing key, 429 while throttled) and returns false. <paramref name="surface"/> names what is
    /// guarded in the message ("admin API", "/metrics").
    /// </summary>
    public async ValueTask<bool> AdmitBearerAsync(HttpContext http, string surface)
    {
        if (!Enabled)
        {
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status401Unauthorized,
                $"The {surface} is disabled: set the environment variable named by server.admin_key_env (default MARGINAL_ADMIN_KEY) and restart.", "invalid_request_error", "admin_disabled");
            return false;
        }
        if (await RefuseIfThrottledAsync(http))
        {
            return false;
        }
        if (BearerOf(http.Request) is not { } presented || !IsKey(presented))
        {
            Failed(http);
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status401Unauthorized, $"The {surface} needs the admin key as 'Bearer ADMIN_KEY'.", "invalid_request_error", "invalid_admin_key");
            return false;
        }
        return true;
    }

    /// <summary>Counts a wrong admin key (or dashboard cookie) presented by the caller's address.</summary>
    public void Failed(HttpContext http) => Throttle.Failed(http.Connection.RemoteIpAddress);
}

/// <summary>
/// Failed admin attempts per client address in fixed windows: at most <see cref="MaxFailures"/> per
/// <see cref="Window"/>. IPv6 addresses count by their /64 (one host usually holds the whole prefix). Memory is
/// bounded: at most <see cref="MaxAddresses"/> addresses are tracked; when that many are, expired windows are dropped
/// and, if none has expired, further addresses share one window, so a flood from many addresses is throttled as one.
/// </summary>
internal sealed class AdminThrottle(TimeProvider time, int maxFailures = 10, TimeSpan? window = null, int maxAddresses = 10_000)
{
    private static readonly IPAddress Overflow = IPAddress.IPv6None;
    private readonly ConcurrentDictionary<IPAddress, Entry> _failures = new();

    public int MaxFailures { get; } = maxFailures;

    public TimeSpan Window { get; } = window ?? TimeSpan.FromMinutes(1);

    public int MaxAddresses { get; } = maxAddresses;

    public bool IsThrottled(IPAddress? address, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        // An untracked address while the table is full is one of the newcomers that share the overflow window.
        if (!_failures.TryGetValue(KeyOf(address), out var entry) && (_failures.Count < MaxAddresses || !_failures.TryGetValue(Overflow, out entry)))
        {
            return false;
        }
        lock (entry)
        {
            var left = entry.Start + Window - time.GetUtcNow();
            if (entry.Count < MaxFailures || left <= TimeSpan.Zero)
            {
                return false;
            }
            retryAfter = left;
            return true;
        }
    }

    public void Failed(IPAddress? address)
    {
        var now = time.GetUtcNow();
        var key = KeyOf(address);
        if (!_failures.ContainsKey(key) && _failures.Count >= MaxAddresses)
        {
            foreach (var (old, entry) in _failures)
            {
                if (entry.Start + Window <= now)
                {
                    _failures.TryRemove(old, out _);
                }
            }
            if (_failures.Count >= MaxAddresses)
            {
                key = Overflow;
            }
        }
        var counted = _failures.GetOrAdd(key, _ => new Entry { Start = now });
        lock (counted)
        {
            if (counted.Start + Window <= now)
            {
                counted.Start = now;
                counted.Count = 0;
            }
            counted.Count++;
        }
    }

    private static IPAddress KeyOf(IPAddress? address)
    {
        if (address is null)
        {
            return IPAddress.None;
        }
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address;
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes);
    }

    private sealed class Entry
    {
        public DateTimeOffset Start;
        public int Count;
    }
}
