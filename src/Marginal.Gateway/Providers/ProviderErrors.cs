using System.ClientModel;
using System.Collections;
using System.Globalization;
using System.Text.Json;
using Anthropic.Exceptions;
using Marginal.Core.Errors;
using Polly.Timeout;

namespace Marginal.Gateway.Providers;

/// <summary>
/// Turns whatever a provider SDK threw into a <see cref="GatewayException"/> that is safe to show:
/// the upstream's status and message are kept, secrets and stack traces never are.
/// </summary>
public static class ProviderErrors
{
    private const int MaxUpstreamMessage = 500;

    /// <summary>
    /// Key in <see cref="Exception.Data"/> under which a provider leaves the raw <c>retry-after-ms</c> header of a failed
    /// response, for SDKs whose exceptions do not keep the response headers (Anthropic's).
    /// </summary>
    public const string RetryAfterMsDataKey = "marginal.retry-after-ms";

    /// <summary>Like <see cref="RetryAfterMsDataKey"/>, for the raw <c>retry-after</c> header (seconds or an HTTP date).</summary>
    public const string RetryAfterDataKey = "marginal.retry-after";

    /// <summary>
    /// A failure of this process, not of the provider: an allocation that failed while the request was copied or
    /// serialised. It is not classified (it would read as a 502 blaming the provider) and not failed over (the next
    /// provider needs the same memory); it reaches the server, which answers 503 (Hosting/ErrorGuard).
    /// </summary>
    public static bool IsOwnFailure(Exception exception) => exception is OutOfMemoryException or InsufficientExecutionStackException;

    public static GatewayException Classify(Exception exception, string provider, TimeProvider? time = null)
    {
        switch (exception)
        {
            case GatewayException gateway:
                return gateway;
            case ClientResultException { Status: 0, InnerException: { } transport }:
                // System.ClientModel wraps a transport failure (no response at all) in a result exception of status 0.
                return Classify(transport, provider, time);
            case ClientResultException result:
                var response = result.GetRawResponse();
                return FromStatus(provider, result.Status, ReadMessage(response?.Content?.ToString()), RetryAfterOf(response?.Headers, time ?? TimeProvider.System), exception);
            case AnthropicApiException api:
                return FromStatus(provider, (int)api.StatusCode, ReadMessage(api.ResponseBody), RetryAfterOf(api.Data, time ?? TimeProvider.System), exception);
            case AnthropicSseException sse:
                // An `error` event inside a stream that had already started; the event names a type but no status.
                return FromStatus(provider, StatusOf(sse.Type?.Raw()), Truncate(sse.ApiMessage), null, exception);
            case AnthropicIOException when exception.InnerException is { } io:
                return Classify(io, provider, time);
            case AnthropicInvalidDataException:
                return new GatewayException(GatewayErrorKind.UpstreamError, $"Provider '{provider}' sent a malformed response.", "upstream_malformed_response", innerException: exception);
            case TimeoutRejectedException:
            case OperationCanceledException:
                return new GatewayException(GatewayErrorKind.UpstreamTimeout, $"Provider '{provider}' did not answer in time.", "upstream_timeout", innerException: exception);
            case HttpRequestException { StatusCode: null } http when !ConnectionLost(http):
                return new GatewayException(GatewayErrorKind.UpstreamUnavailable, $"Provider '{provider}' could not be reached.", "upstream_unreachable", innerException: exception);
            case HttpRequestException { StatusCode: null }:
            case IOException:
                return new GatewayException(GatewayErrorKind.UpstreamError, $"The connection to provider '{provider}' was lost.", "upstream_connection_lost", innerException: exception);
            case JsonException or FormatException or InvalidOperationException or KeyNotFoundException:
                return new GatewayException(GatewayErrorKind.UpstreamError, $"Provider '{provider}' sent a malformed response.", "upstream_malformed_response", innerException: exception);
            default:
                return new GatewayException(GatewayErrorKind.UpstreamError, $"Provider '{provider}' failed.", "upstream_error", innerException: exception);
        }
    }

    /// <summary>
    /// True when the upstream was reached and the connection then broke: it ended or was reset while the answer was
    /// being read (SocketsHttpHandler reports <see cref="HttpRequestError.ResponseEnded"/>, or wraps the
    /// <see cref="IOException"/> of a body read in "Error while copying content"). A failure to connect, resolve or
    /// shake hands is "could not be reached".
    /// </summary>
    private static bool ConnectionLost(HttpRequestException exception) =>
        exception.HttpRequestError == HttpRequestError.ResponseEnded || exception.InnerException is IOException;

    /// <summary>Maps an upstream HTTP status to what the client sees.</summary>
    public static GatewayException FromStatus(string provider, int status, string? upstreamMessage, TimeSpan? retryAfter, Exception? inner = null)
    {
        var detail = upstreamMessage is null ? "" : $": {upstreamMessage}";
        return status switch
        {
            0 => new GatewayException(GatewayErrorKind.UpstreamUnavailable, $"Provider '{provider}' could not be reached.", "upstream_unreachable", innerException: inner),
            // The client's request was wrong in the upstream's eyes; say so as the upstream did.
            400 or 404 or 409 or 413 or 422 => new GatewayException(GatewayErrorKind.InvalidRequest, upstreamMessage ?? $"Provider '{provider}' rejected the request.", "upstream_rejected", innerException: inner) { UpstreamStatus = status },
            // The gateway's credential for the upstream is wrong: an operator problem, not the client's.
            401 or 403 => new GatewayException(GatewayErrorKind.UpstreamError, $"Provider '{provider}' rejected the gateway's credentials (status {status}).", "upstream_auth_failed", innerException: inner) { UpstreamStatus = status },
            408 => new GatewayException(GatewayErrorKind.UpstreamTimeout, $"Provider '{provider}' timed out (status 408){detail}", "upstream_timeout", innerException: inner) { UpstreamStatus = status },
            429 => new GatewayException(GatewayErrorKind.RateLimited, $"Provider '{provider}' is rate limiting{detail}", "upstream_rate_limited", innerException: inner) { UpstreamStatus = status, RetryAfter = retryAfter },
            503 or 529 => new GatewayException(GatewayErrorKind.UpstreamUnavailable, $"Provider '{provider}' is unavailable (status {status}){detail}", "upstream_unavailable", innerException: inner) { UpstreamStatus = status, RetryAfter = retryAfter },
            504 => new GatewayException(GatewayErrorKind.UpstreamTimeout, $"Provider '{provider}' timed out (status 504){detail}", "upstream_timeout", innerException: inner) { UpstreamStatus = status },
            _ => new GatewayException(GatewayErrorKind.UpstreamError, $"Provider '{provider}' failed (status {status}){detail}", "upstream_error", innerException: inner) { UpstreamStatus = status },
        };
    }

    /// <summary>Reads <c>error.message</c> from an OpenAI- or Anthropic-style error body; null when absent.</summary>
    public static string? ReadMessage(string? body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("error", out var error)
                && error.ValueKind == JsonValueKind.Object
                && error.TryGetProperty("message", out var message)
                && message.ValueKind == JsonValueKind.String)
            {
                var text = message.GetString()!;
                return text.Length > MaxUpstreamMessage ? text[..MaxUpstreamMessage] + "…" : text;
            }
        }
        catch (JsonException)
        {
        }
        return null;
    }

    /// <summary>Reads the headers a provider left in <see cref="Exception.Data"/> under <see cref="RetryAfterMsDataKey"/> and <see cref="RetryAfterDataKey"/>.</summary>
    public static TimeSpan? RetryAfterOf(IDictionary data, TimeProvider time)
    {
        if (data[RetryAfterMsDataKey] is string ms && double.TryParse(ms, NumberStyles.Float, CultureInfo.InvariantCulture, out var millis) && millis >= 0)
        {
            return TimeSpan.FromMilliseconds(millis);
        }
        return ParseRetryAfter(data[RetryAfterDataKey] as string, time);
    }

    /// <summary>The HTTP status Anthropic uses for each error type (Anthropic API, "Errors").</summary>
    private static int StatusOf(string? errorType) => errorType switch
    {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    };

    private static string? Truncate(string? text) =>
        text is { Length: > MaxUpstreamMessage } ? text[..MaxUpstreamMessage] + "…" : text;

    /// <summary>Reads <c>retry-after-ms</c> or <c>retry-after</c> (seconds or an HTTP date).</summary>
    public static TimeSpan? RetryAfterOf(System.ClientModel.Primitives.PipelineResponseHeaders? headers, TimeProvider time)
    {
        if (headers is null)
        {
            return null;
        }
        if (headers.TryGetValue("retry-after-ms", out var ms) && double.TryParse(ms, NumberStyles.Float, CultureInfo.InvariantCulture, out var millis) && millis >= 0)
        {
            return TimeSpan.FromMilliseconds(millis);
        }
        return headers.TryGetValue("retry-after", out var value) ? ParseRetryAfter(value, time) : null;
    }

    public static TimeSpan? ParseRetryAfter(string? value, TimeProvider time)
    {
        if (value is null)
        {
            return null;
        }
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
        {
            return TimeSpan.FromSeconds(seconds);
        }
        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date)
            ? date - time.GetUtcNow() is { } wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero
            : null;
    }
}
