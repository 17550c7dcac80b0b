using System.Globalization;
using System.Text.Json;
using Marginal.Core.Errors;
using Marginal.Gateway.Wire.OpenAI;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Wire;

/// <summary>Errors in OpenAI's schema (<see cref="OpenAIErrorJson"/>) with the matching HTTP status.</summary>
public static class OpenAIErrors
{
    public static int StatusOf(GatewayErrorKind kind) => kind switch
    {
        GatewayErrorKind.InvalidRequest => StatusCodes.Status400BadRequest,
        GatewayErrorKind.Authentication => StatusCodes.Status401Unauthorized,
        GatewayErrorKind.PermissionDenied => StatusCodes.Status403Forbidden,
        GatewayErrorKind.NotFound => StatusCodes.Status404NotFound,
        GatewayErrorKind.RequestTooLarge => StatusCodes.Status413PayloadTooLarge,
        GatewayErrorKind.RateLimited => StatusCodes.Status429TooManyRequests,
        GatewayErrorKind.PaymentRequired => StatusCodes.Status402PaymentRequired,
        GatewayErrorKind.UpstreamUnavailable => StatusCodes.Status503ServiceUnavailable,
        GatewayErrorKind.UpstreamTimeout => StatusCodes.Status504GatewayTimeout,
        GatewayErrorKind.Conflict => StatusCodes.Status409Conflict,
        GatewayErrorKind.Unprocessable => StatusCodes.Status422UnprocessableEntity,
        _ => StatusCodes.Status502BadGateway,
    };

    public static Task WriteAsync(HttpContext http, GatewayException error)
    {
        var response = http.Response;
        response.StatusCode = StatusOf(error.Kind);
        if (error.RetryAfter is { } wait)
        {
            response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }
        return WriteBodyAsync(response, error.Message, OpenAIErrorJson.TypeOf(error.Kind), error.Param, error.Code);
    }

    public static Task WriteAsync(HttpContext http, int status, string message, string type, string? code, string? param = null)
    {
        http.Response.StatusCode = status;
        return WriteBodyAsync(http.Response, message, type, param, code);
    }

    private static async Task WriteBodyAsync(HttpResponse response, string message, string type, string? param, string? code)
    {
        response.ContentType = "application/json";
        using (var json = new Utf8JsonWriter(response.BodyWriter))
        {
            OpenAIErrorJson.WriteBody(json, message, type, param, code);
        }
        await response.BodyWriter.FlushAsync();
    }
}
