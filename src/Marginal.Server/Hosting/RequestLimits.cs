using System.Globalization;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Hosting;

/// <summary>
/// Refuses a body larger than the limit from its Content-Length, before reading a byte of it, and a body to a JSON API
/// that says it is something else (415). A body without a Content-Type is read as JSON: some clients send none.
/// </summary>
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
        if (HttpMethods.IsPost(http.Request.Method) && IsJsonApi(http.Request.Path) && http.Request.ContentType is { Length: > 0 } type
            && !http.Request.HasJsonContentType())
        {
            return OpenAIErrors.WriteAsync(http, StatusCodes.Status415UnsupportedMediaType,
                $"The request body must be JSON (Content-Type: application/json); it was sent as '{ClientBounds.Shown(type)}'.", "invalid_request_error", "unsupported_media_type");
        }
        return next(http);
    }

    private static bool IsJsonApi(PathString path) =>
        path.StartsWithSegments("/v1", StringComparison.Ordinal) || path.StartsWithSegments("/admin/v1", StringComparison.Ordinal);

    public static Task WriteTooLargeAsync(HttpContext http, long? maxBodyBytes = null) =>
        OpenAIErrors.WriteAsync(http, StatusCodes.Status413PayloadTooLarge,
            maxBodyBytes is { } max
                ? string.Create(CultureInfo.InvariantCulture, $"The request body is larger than this gateway accepts ({max} bytes).")
                : "The request body is larger than this gateway accepts.",
            "invalid_request_error", "request_too_large");
}
