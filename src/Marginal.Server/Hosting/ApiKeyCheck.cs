using System.Security.Cryptography;
using System.Text;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Hosting;

/// <summary>
/// When <c>server.api_key_env</c> is set, every <c>/v1</c> request must carry that key as a bearer token.
/// Compared as SHA-256 digests in constant time, so neither length nor content leaks through timing.
/// </summary>
internal sealed class ApiKeyCheck(RequestDelegate next, string key)
{
    private readonly byte[] _digest = SHA256.HashData(Encoding.UTF8.GetBytes(key));

    public Task InvokeAsync(HttpContext http)
    {
        if (!http.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal))
        {
            return next(http);
        }
        var header = http.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return OpenAIErrors.WriteAsync(http, StatusCodes.Status401Unauthorized,
                "You didn't provide an API key. Send it in the Authorization header as 'Bearer YOUR_KEY'.", "invalid_request_error", "missing_api_key");
        }
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header.AsSpan(7).Trim().ToString()));
        return CryptographicOperations.FixedTimeEquals(presented, _digest)
            ? next(http)
            : OpenAIErrors.WriteAsync(http, StatusCodes.Status401Unauthorized, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key");
    }
}
