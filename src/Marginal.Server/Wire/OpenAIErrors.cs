using System.Globalization;
using System.Text.Json;
using Marginal.Core.Errors;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Wire;

/// <summary>Errors in OpenAI's schema: <c>{"error":{"message","type","param","code"}}</c> with the matching status.</summary>
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

    /// <summary>OpenAI's <c>type</c> for each kind.</summary>
    public static string TypeOf(GatewayErrorKind kind) => kind switch
    {
        // OpenAI answers a bad key with type invalid_request_error and code invalid_api_key; so do we.
        GatewayErrorKind.InvalidRequest or GatewayErrorKind.NotFound or GatewayErrorKind.RequestTooLarge or GatewayErrorKind.Authentication
            or GatewayErrorKind.Conflict or GatewayErrorKind.Unprocessable => "invalid_request_error",
        GatewayErrorKind.PermissionDenied => "permission_error",
        GatewayErrorKind.RateLimited => "rate_limit_error",
        // OpenAI's type for an exhausted quota or balance.
        GatewayErrorKind.PaymentRequired => "insufficient_quota",
        GatewayErrorKind.UpstreamTimeout => "timeout_error",
        _ => "api_error",
    };

    public static Task WriteAsync(HttpContext http, GatewayException error)
    {
        var response = http.Response;
        response.StatusCode = StatusOf(error.Kind);
        if (error.RetryAfter is { } wait)
        {
            response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }
        return WriteBodyAsync(response, error.Message, TypeOf(error.Kind), error.Param, error.Code);
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
            WriteBody(json, message, type, param, code);
        }
        await response.BodyWriter.FlushAsync();
    }

    public static void WriteBody(Utf8JsonWriter json, string message, string type, string? param, string? code)
    {
        json.WriteStartObject();
        json.WriteStartObject("error"u8);
        json.WriteString("message"u8, message);
        json.WriteString("type"u8, type);
        if (param is null) { json.WriteNull("param"u8); } else { json.WriteString("param"u8, param); }
        if (code is null) { json.WriteNull("code"u8); } else { json.WriteString("code"u8, code); }
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
