using Marginal.Core.Errors;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Hosting;

/// <summary>The ledger id of a request.</summary>
internal static class RequestIds
{
    /// <summary>
    /// The client's <c>Idempotency-Key</c> under its tenant (so a retry is billed once and tenants never collide), else
    /// a new time-ordered id.
    /// </summary>
    public static string Of(HttpContext http, string tenant)
    {
        var idempotencyKey = http.Request.Headers["Idempotency-Key"].ToString();
        if (idempotencyKey.Length == 0)
        {
            return "req_" + Guid.CreateVersion7().ToString("N");
        }
        if (idempotencyKey.Length > 255)
        {
            throw new GatewayException(GatewayErrorKind.InvalidRequest, "The Idempotency-Key header must be at most 255 characters.", "invalid_idempotency_key", "Idempotency-Key");
        }
        return $"{tenant}:{idempotencyKey}";
    }

    /// <summary>True when the client sent an <c>Idempotency-Key</c>: its answer is kept for retries (docs/architecture.md, "Idempotent replay").</summary>
    public static bool HasIdempotencyKey(HttpContext http) => http.Request.Headers["Idempotency-Key"].ToString().Length > 0;
}
