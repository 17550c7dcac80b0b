namespace Marginal.Core.Errors;

/// <summary>What went wrong, in the terms a client can act on. The HTTP host maps each kind to a status code.</summary>
public enum GatewayErrorKind
{
    /// <summary>The request itself is wrong (400).</summary>
    InvalidRequest,
    /// <summary>No or a wrong credential (401).</summary>
    Authentication,
    /// <summary>The credential may not do this (403).</summary>
    PermissionDenied,
    /// <summary>The thing asked for does not exist (404).</summary>
    NotFound,
    /// <summary>The body is larger than allowed (413).</summary>
    RequestTooLarge,
    /// <summary>Too many requests, here or at every upstream that could serve it (429).</summary>
    RateLimited,
    /// <summary>A budget, free-tier allowance or prepaid credit is used up (402).</summary>
    PaymentRequired,
    /// <summary>The upstream failed or answered with something unusable (502).</summary>
    UpstreamError,
    /// <summary>No upstream could be reached or none is configured to serve (503).</summary>
    UpstreamUnavailable,
    /// <summary>The upstream did not answer in time (504).</summary>
    UpstreamTimeout,
    /// <summary>The request conflicts with one still in progress, e.g. the same Idempotency-Key (409).</summary>
    Conflict,
    /// <summary>The request is well-formed but cannot be processed as sent, e.g. an Idempotency-Key reused with another body (422).</summary>
    Unprocessable,
}

/// <summary>
/// An error that is meant to reach the client. Its <see cref="Exception.Message"/> is safe to show:
/// it never carries secrets, prompts or a stack trace.
/// </summary>
public sealed class GatewayException : Exception
{
    public GatewayException(GatewayErrorKind kind, string message, string? code = null, string? param = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        Code = code;
        Param = param;
    }

    public GatewayException()
        : this(GatewayErrorKind.UpstreamError, "The gateway failed.")
    {
    }

    public GatewayException(string message)
        : this(GatewayErrorKind.UpstreamError, message)
    {
    }

    public GatewayException(string message, Exception innerException)
        : this(GatewayErrorKind.UpstreamError, message, innerException: innerException)
    {
    }

    public GatewayErrorKind Kind { get; }

    /// <summary>A machine-readable code, e.g. <c>model_not_found</c>; null when none applies.</summary>
    public string? Code { get; }

    /// <summary>The request parameter at fault, e.g. <c>messages[0].role</c>; null when none.</summary>
    public string? Param { get; }

    /// <summary>How long the client should wait before retrying, when known.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>The HTTP status the upstream answered with, when the error came from one.</summary>
    public int? UpstreamStatus { get; init; }

    /// <summary>True when another upstream may succeed where this one failed (429, 5xx, timeout, connection error).</summary>
    public bool IsRetryableElsewhere => Kind is GatewayErrorKind.RateLimited or GatewayErrorKind.UpstreamError
        or GatewayErrorKind.UpstreamUnavailable or GatewayErrorKind.UpstreamTimeout;

    public static GatewayException InvalidRequest(string message, string? param = null, string? code = null) =>
        new(GatewayErrorKind.InvalidRequest, message, code, param);

    /// <summary>
    /// A model this gateway does not serve: 404 <c>model_not_found</c>, as OpenAI answers, so SDKs raise their not-found
    /// error (openai-python's <c>NotFoundError</c>, the .NET SDK's 404 <c>ClientResultException</c>).
    /// </summary>
    public static GatewayException ModelNotFound(string message) => new(GatewayErrorKind.NotFound, message, "model_not_found", "model");
}
