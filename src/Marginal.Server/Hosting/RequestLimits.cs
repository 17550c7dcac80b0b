using System.Globalization;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Hosting;

/// <summary>Refuses a body larger than the limit from its Content-Length, before reading a byte of it.</summary>
internal sealed class RequestLimits(RequestDelegate next, long maxBodyBytes)
{
    public Task InvokeAsync(HttpContext http)
    {
        if (http.Request.ContentLength is { } length && length > maxBodyBytes)
        {
            // Tell Kestrel not to drain a body nobody will read.
            http.Response.Headers.Connection = "close";
            return WriteTooLargeAsync(http, maxBodyBytes);
        }
        return next(http);
    }

    public static Task WriteTooLargeAsync(HttpContext http, long? maxBodyBytes = null) =>
        OpenAIErrors.WriteAsync(http, StatusCodes.Status413PayloadTooLarge,
            maxBodyBytes is { } max
                ? string.Create(CultureInfo.InvariantCulture, $"The request body is larger than this gateway accepts ({max} bytes).")
                : "The request body is larger than this gateway accepts.",
            "invalid_request_error", "request_too_large");
}
