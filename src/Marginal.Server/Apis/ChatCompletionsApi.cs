using System.Buffers;
using System.Diagnostics;
using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Core.Tenancy;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Server.Hosting;
using Marginal.Server.Telemetry;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.AI;

namespace Marginal.Server.Apis;

/// <summary>
/// <c>POST /v1/chat/completions</c>: JSON in, JSON or server-sent events out, through the gateway pipeline. The whole
/// request path reads top to bottom in <c>HandleAsync</c>: read the request, check the key's models, defer it (or not),
/// build its <see cref="GatewayContext"/>, call the pipeline (admission first: <c>GatewayPipeline</c>), and write the
/// answer with the headers its outcomes give.
/// </summary>
public static class ChatCompletionsApi
{
    public static IEndpointRouteBuilder MapChatCompletionsApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat/completions", HandleAsync);
        return app;
    }

    private static async Task HandleAsync(HttpContext http, IChatClient pipeline, GatewayMetrics metrics, TimeProvider time)
    {
        var started = Stopwatch.GetTimestamp();
        var cancellationToken = http.RequestAborted;
        GatewayContext? context = null;
        var stream = false;
        try
        {
            var deferrable = await JobsApi.BufferIfDeferrableAsync(http, cancellationToken);
            var request = deferrable is null ? await ChatRequestReader.ReadAsync(http.Request.Body, cancellationToken) : ChatRequestReader.Read(deferrable);
            stream = request.Stream == true;
            var (messages, options) = ChatRequestReader.ToChat(request);
            var key = KeyAuthentication.KeyOf(http);
            ModelPermission.Check(key, request.Model!);
            var tenant = key?.Tenant ?? "default";
            if (deferrable is not null && await JobsApi.TryDeferAsync(http, request, deferrable, tenant, key?.Id ?? "none", time))
            {
                return;
            }
            context = Attach(http, request, key, options, time, includeStreamUsage: request.StreamOptions?.IncludeUsage == true);
            var outcome = "ok";
            if (stream)
            {
                using var writer = new ChatStream(request.Model!, time.GetUtcNow().ToUnixTimeSeconds());
                outcome = await DialectExchange.StreamAsync(http, pipeline, messages, options, context, writer, metrics, started);
            }
            else
            {
                var response = await pipeline.GetResponseAsync(messages, options, cancellationToken);
                WriteRouteHeaders(http.Response, context);
                http.Response.ContentType = "application/json";
                ChatResponseWriter.WriteCompletion(http.Response.BodyWriter, response, request.Model!, time);
                await http.Response.BodyWriter.FlushAsync(cancellationToken);
            }
            Record(metrics, context, outcome, stream, started);
        }
        catch (GatewayException error) when (!http.Response.HasStarted)
        {
            // Labelled by the served model only: a client-chosen name would let anyone grow the metric's cardinality.
            metrics.Completed(context?.ServedModel, context?.Provider, error.Code ?? error.Kind.ToString(), stream, started);
            // A request refused by a rate limit, or failed after admission, still tells the client where its windows stand.
            RateLimitHeaders.Write(http.Response, context?.Admission);
            await OpenAIErrors.WriteAsync(http, error);
        }
        catch (BadHttpRequestException tooLarge) when (tooLarge.StatusCode == StatusCodes.Status413PayloadTooLarge && !http.Response.HasStarted)
        {
            await Hosting.RequestLimits.WriteTooLargeAsync(http);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away; the upstream call was cancelled with it.
            metrics.Completed(context?.ServedModel, context?.Provider, "client_closed", stream, started);
        }
    }

    /// <summary>Chat's stream: <c>chat.completion.chunk</c> events, the usage chunk when asked for, the cost comment and <c>[DONE]</c>.</summary>
    private sealed class ChatStream(string model, long created) : DialectExchange.IStreamWriter
    {
        private readonly ChatResponseWriter.StreamState _state = new(model, created);

        public void StartStream(IBufferWriter<byte> output)
        {
        }

        public bool WriteUpdate(IBufferWriter<byte> output, ChatResponseUpdate update) => ChatResponseWriter.WriteChunk(output, update, _state);

        public void EndStream(IBufferWriter<byte> output, ChatFinishReason? finishReason, GatewayContext context)
        {
            if (context.IncludeStreamUsage && context.Usage is { } usage)
            {
                ChatResponseWriter.WriteUsageChunk(output, usage, _state);
            }
            // Headers left long ago; the cost travels as an SSE comment, which every SSE client skips.
            ChatResponseWriter.WriteCostComment(output, context.CostUsd, context.Billed);
            ChatResponseWriter.WriteDone(output);
        }

        public void FailStream(IBufferWriter<byte> output, GatewayException error) =>
            ChatResponseWriter.WriteErrorEvent(output, error.Message, OpenAIErrorJson.TypeOf(error.Kind), error.Code);

        public void Dispose() => _state.Dispose();
    }

    /// <summary>
    /// The request's <see cref="GatewayContext"/> (id from Idempotency-Key, tenant and key, client options, tags), attached to
    /// <paramref name="options"/> and named in the <c>x-marginal-request-id</c> header. Shared by every chat dialect.
    /// </summary>
    internal static GatewayContext Attach(HttpContext http, ChatCompletionRequest request, VirtualKey? key, ChatOptions options, TimeProvider time, bool includeStreamUsage)
    {
        var tenant = key?.Tenant ?? "default";
        var context = new GatewayContext
        {
            RequestId = RequestIds.Of(http, tenant, time),
            IdempotencyKeyGiven = RequestIds.HasIdempotencyKey(http),
            Tenant = tenant,
            KeyId = key?.Id ?? "none",
            RequestedModel = request.Model,
            IncludeStreamUsage = includeStreamUsage,
            EndUser = request.User,
            Metadata = request.Metadata,
            CacheBypass = CacheBypassed(http.Request.Headers),
        };
        if (http.Request.Headers["x-marginal-tags"].ToString() is { Length: > 0 } tags)
        {
            context.Tags.AddRange(ClientBounds.ParseTags(tags));
        }
        options.WithGatewayContext(context);
        http.Response.Headers["x-marginal-request-id"] = context.RequestId;
        return context;
    }

    /// <summary>The metrics of an answered request: its outcome and duration, its tokens and (billed, not replayed) its cost.</summary>
    internal static void Record(GatewayMetrics metrics, GatewayContext context, string outcome, bool stream, long started)
    {
        metrics.Completed(context.ServedModel, context.Provider, outcome, stream, started);
        if (!context.Replayed)
        {
            metrics.Tokens(context.ServedModel, context.Usage?.InputTokenCount, context.Usage?.OutputTokenCount);
        }
        if (context.Billed && !context.Replayed)
        {
            metrics.Cost(context.ServedModel, context.Provider, context.Tenant, context.CostUsd);
        }
    }

    /// <summary>The client opts out of the response cache with <c>Cache-Control: no-cache</c> (or <c>no-store</c>) or <c>x-marginal-cache: bypass</c>.</summary>
    private static bool CacheBypassed(IHeaderDictionary headers) =>
        headers["x-marginal-cache"].ToString().Equals("bypass", StringComparison.OrdinalIgnoreCase)
        || headers.CacheControl.ToString().Contains("no-cache", StringComparison.OrdinalIgnoreCase)
        || headers.CacheControl.ToString().Contains("no-store", StringComparison.OrdinalIgnoreCase);

    internal static void WriteRouteHeaders(HttpResponse response, GatewayContext context)
    {
        RateLimitHeaders.Write(response, context.Admission);
        var headers = response.Headers;
        if (context.CostUsd is { } cost)
        {
            headers["x-marginal-cost-usd"] = cost.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        if (!context.Billed)
        {
            headers["x-marginal-duplicate"] = "true";
        }
        if (context.Replayed)
        {
            headers["x-marginal-idempotent-replay"] = "true";
        }
        if (context.ServedModel is { } served)
        {
            headers["x-marginal-model"] = served;
        }
        if (context.Provider is { } provider)
        {
            headers["x-marginal-provider"] = provider;
        }
        if (context.RouteReason is { } reason)
        {
            headers["x-marginal-route"] = reason;
        }
        if (context.CacheOutcome is { } cache)
        {
            headers["x-marginal-cache"] = cache;
        }
        if (context.Attempts.Count > 1)
        {
            headers["x-marginal-attempts"] = context.Attempts.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}
