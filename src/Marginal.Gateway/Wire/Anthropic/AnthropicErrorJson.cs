using Marginal.Core.Errors;

namespace Marginal.Gateway.Wire.Anthropic;

/// <summary>Errors in Anthropic's schema, <c>{"type":"error","error":{"type","message"}}</c>: the type of each kind.</summary>
public static class AnthropicErrorJson
{
    /// <summary>Anthropic's error <c>type</c> for each kind (docs.anthropic.com, "Errors").</summary>
    public static string TypeOf(GatewayErrorKind kind) => kind switch
    {
        GatewayErrorKind.InvalidRequest or GatewayErrorKind.Conflict or GatewayErrorKind.Unprocessable => "invalid_request_error",
        GatewayErrorKind.Authentication => "authentication_error",
        GatewayErrorKind.PermissionDenied => "permission_error",
        GatewayErrorKind.NotFound => "not_found_error",
        GatewayErrorKind.RequestTooLarge => "request_too_large",
        GatewayErrorKind.RateLimited => "rate_limit_error",
        // Anthropic has no type of its own for an exhausted balance; its billing errors are invalid requests.
        GatewayErrorKind.PaymentRequired => "billing_error",
        GatewayErrorKind.UpstreamUnavailable => "overloaded_error",
        GatewayErrorKind.UpstreamTimeout => "timeout_error",
        _ => "api_error",
    };
}
