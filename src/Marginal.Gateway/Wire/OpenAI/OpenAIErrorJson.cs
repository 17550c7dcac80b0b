using System.Text.Json;
using Marginal.Core.Errors;

namespace Marginal.Gateway.Wire.OpenAI;

/// <summary>Errors in OpenAI's schema, <c>{"error":{"message","type","param","code"}}</c>: the type of each kind and the body.</summary>
public static class OpenAIErrorJson
{
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

    /// <summary>Writes <c>{"error":{"message","type","param","code"}}</c>.</summary>
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
