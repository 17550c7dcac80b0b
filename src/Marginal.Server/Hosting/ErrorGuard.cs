using Marginal.Core.Errors;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Marginal.Server.Hosting;

/// <summary>
/// Last line of defence: anything unhandled becomes an OpenAI-format 500 with no stack trace, and an empty
/// 404/405 from routing gets OpenAI's body too.
/// </summary>
internal sealed partial class ErrorGuard(RequestDelegate next, ILogger<ErrorGuard> logger)
{
    public async Task InvokeAsync(HttpContext http)
    {
        try
        {
            await next(http);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (GatewayException error) when (!http.Response.HasStarted)
        {
            await OpenAIErrors.WriteAsync(http, error);
            return;
        }
        catch (BadHttpRequestException bad) when (!http.Response.HasStarted)
        {
            await OpenAIErrors.WriteAsync(http, bad.StatusCode, bad.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? "The request body is larger than this gateway accepts." : "The request could not be read.", "invalid_request_error",
                bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "request_too_large" : "bad_request");
            return;
        }
        catch (Exception ex) when (ex is OutOfMemoryException or InsufficientExecutionStackException)
        {
            // The gateway's own shortage (never the provider's): 503 with a server-side type, so the client retries
            // later and nobody reads it as the upstream's fault. One line, no stack trace: under memory pressure
            // there may be many.
            LogOutOfMemory(logger, http.Request.Method, http.Request.Path, ex.GetType().Name);
            if (!http.Response.HasStarted)
            {
                http.Response.Clear();
                http.Response.Headers.RetryAfter = "1";
                await OpenAIErrors.WriteAsync(http, StatusCodes.Status503ServiceUnavailable,
                    "The gateway ran out of memory for this request (its own limit, not the provider's). Retry shortly, or send a smaller body.", "server_error", "gateway_out_of_memory");
            }
            return;
        }
        catch (Exception ex)
        {
            LogUnhandled(logger, http.Request.Method, http.Request.Path, ex);
            if (!http.Response.HasStarted)
            {
                http.Response.Clear();
                await OpenAIErrors.WriteAsync(http, StatusCodes.Status500InternalServerError,
                    "The gateway had an internal error while processing your request.", "api_error", "internal_error");
            }
            return;
        }

        if (!http.Response.HasStarted && http.Response.ContentLength is null && http.Response.ContentType is null)
        {
            switch (http.Response.StatusCode)
            {
                case StatusCodes.Status404NotFound:
                    await OpenAIErrors.WriteAsync(http, 404, $"Unknown request URL: {http.Request.Method} {http.Request.Path}.", "invalid_request_error", "unknown_url");
                    break;
                case StatusCodes.Status405MethodNotAllowed:
                    await OpenAIErrors.WriteAsync(http, 405, $"Method {http.Request.Method} is not allowed on {http.Request.Path}.", "invalid_request_error", "method_not_allowed");
                    break;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Out of memory on {Method} {Path} ({Error}); answered 503")]
    private static partial void LogOutOfMemory(ILogger logger, string method, string path, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled error on {Method} {Path}")]
    private static partial void LogUnhandled(ILogger logger, string method, string path, Exception exception);
}
