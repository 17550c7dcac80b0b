using Marginal.Core.Errors;
using Marginal.Core.Tenancy;
using Marginal.Gateway.Wire.OpenAI;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Hosting;

/// <summary>The ledger id of a request.</summary>
internal static class RequestIds
{
    /// <summary>
    /// The client's <c>Idempotency-Key</c> under its tenant (so a retry is billed once and tenants never collide: the
    /// tenant part is escaped, <see cref="TenantNames.IdPrefix"/>, so the first <c>:</c> always ends it), else a new
    /// time-ordered id.
    /// </summary>
    public static string Of(HttpContext http, string tenant, TimeProvider time)
    {
        var idempotencyKey = http.Request.Headers["Idempotency-Key"].ToString();
        if (idempotencyKey.Length == 0)
        {
            return New(time);
        }
        if (idempotencyKey.Length > ClientBounds.IdempotencyKey)
        {
            throw new GatewayException(GatewayErrorKind.InvalidRequest, $"The Idempotency-Key header must be at most {ClientBounds.IdempotencyKey} characters.", "invalid_idempotency_key", "Idempotency-Key");
        }
        // The key is echoed in headers and logs: printable ASCII only, as Stripe's and OpenAI's keys are.
        foreach (var c in idempotencyKey)
        {
            if (c is < ' ' or > '~')
            {
                throw new GatewayException(GatewayErrorKind.InvalidRequest, "The Idempotency-Key header may hold printable ASCII characters only (no control or non-ASCII characters).", "invalid_idempotency_key", "Idempotency-Key");
            }
        }
        return $"{TenantNames.IdPrefix(tenant)}:{idempotencyKey}";
    }

    /// <summary>
    /// <c>req_</c> and a version-7 UUID (48-bit Unix milliseconds, then random bits) as 32 hex digits. The random bits
    /// come from <see cref="Random.Shared"/>: <see cref="Guid.CreateVersion7()"/> reads the kernel's random source, one
    /// system call per request (2% of a request's CPU), and an id needs to be unique, not secret.
    /// </summary>
    internal static string New(TimeProvider time)
    {
        Span<byte> bytes = stackalloc byte[16];
        Random.Shared.NextBytes(bytes[6..]);
        var millis = time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 5; i >= 0; i--, millis >>= 8)
        {
            bytes[i] = (byte)millis;
        }
        bytes[6] = (byte)(0x70 | (bytes[6] & 0x0F));
        bytes[8] = (byte)(0x80 | (bytes[8] & 0x3F));
        return string.Create(36, bytes, static (chars, id) =>
        {
            "req_".CopyTo(chars);
            Convert.TryToHexStringLower(id, chars[4..], out _);
        });
    }

    /// <summary>True when the client sent an <c>Idempotency-Key</c>: its answer is kept for retries (docs/architecture.md, "Idempotent replay").</summary>
    public static bool HasIdempotencyKey(HttpContext http) => http.Request.Headers["Idempotency-Key"].ToString().Length > 0;
}
