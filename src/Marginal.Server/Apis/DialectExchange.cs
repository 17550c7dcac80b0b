using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Server.Hosting;
using Marginal.Server.Telemetry;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;

namespace Marginal.Server.Apis;

/// <summary>
/// The request path of a client dialect other than Chat Completions (<c>/v1/responses</c>, <c>/v1/messages</c>), read
/// top to bottom in <see cref="HandleAsync"/>: parse the body, translate it into a chat request (the dialect's reader),
/// check it like chat (<see cref="ChatRequestReader.ToChat"/>), check the key's models, build the request's
/// <see cref="GatewayContext"/>, call the same pipeline as chat (admission, idempotent replay, metering, cache, routing,
/// shaping, capacity), and write the answer in the dialect. So every dialect is admitted, recorded and priced the same
/// way. Deferral (<c>x-marginal-deadline</c>) is served on <c>/v1/chat/completions</c> only; here it is a 400.
/// </summary>
internal static class DialectExchange
{
    /// <summary>What differs between dialects: how a body becomes a chat request, and how answers and errors are written.</summary>
    public interface IDialect : IDisposable
    {
        /// <summary>Translates the parsed body; throws <see cref="GatewayException"/> naming the field at fault.</summary>
        ChatCompletionRequest Translate(JsonElement body);

        /// <summary>The error raised by the chat checks, with the dialect's name for the field.</summary>
        GatewayException Rename(GatewayException error);

        Task WriteErrorAsync(HttpContext http, GatewayException error);

        /// <summary>Writes a whole, non-streamed answer.</summary>
        void WriteAnswer(IBufferWriter<byte> output, ChatResponse response);

        void StartStream(IBufferWriter<byte> output);

        /// <summary>Writes one streamed update; false when it carried nothing a client sees.</summary>
        bool WriteUpdate(IBufferWriter<byte> output, ChatResponseUpdate update);

        void EndStream(IBufferWriter<byte> output, ChatFinishReason? finishReason, UsageDetails? usage);

        void FailStream(IBufferWriter<byte> output, GatewayException error);
    }

    public static async Task HandleAsync(HttpContext http, IChatClient pipeline, GatewayMetrics metrics, TimeProvider time, Func<IDialect> dialectOf)
    {
        var started = Stopwatch.GetTimestamp();
        var cancellationToken = http.RequestAborted;
        GatewayContext? context = null;
        var stream = false;
        using var dialect = dialectOf();
        try
        {
            if (http.Request.Headers.ContainsKey("x-marginal-deadline"))
            {
                throw GatewayException.InvalidRequest("Deferral (x-marginal-deadline) is served on /v1/chat/completions only.", "x-marginal-deadline", "unsupported_parameter");
            }
            ChatCompletionRequest request;
            try
            {
                using var body = await JsonDocument.ParseAsync(http.Request.Body, new JsonDocumentOptions { MaxDepth = 64 }, cancellationToken);
                request = dialect.Translate(body.RootElement);
            }
            catch (JsonException)
            {
                throw GatewayException.InvalidRequest("We could not parse the JSON body of your request: it must be valid JSON.", code: "invalid_json");
            }
            stream = request.Stream == true;
            List<ChatMessage> messages;
            ChatOptions options;
            try
            {
                (messages, options) = ChatRequestReader.ToChat(request);
            }
            catch (GatewayException error)
            {
                throw dialect.Rename(error);
            }
            var key = KeyAuthentication.KeyOf(http);
            ModelPermission.Check(key, request.Model!);
            var tenant = key?.Tenant ?? "default";
            context = new GatewayContext
            {
                RequestId = RequestIds.Of(http, tenant, time),
                IdempotencyKeyGiven = RequestIds.HasIdempotencyKey(http),
                Tenant = tenant,
                KeyId = key?.Id ?? "none",
                RequestedModel = request.Model,
                IncludeStreamUsage = stream,
                EndUser = request.User,
                Metadata = request.Metadata,
                CacheBypass = ChatCompletionsApi.CacheBypassed(http.Request.Headers),
            };
            if (http.Request.Headers["x-marginal-tags"].ToString() is { Length: > 0 } tags)
            {
                context.Tags.AddRange(ClientBounds.ParseTags(tags));
            }
            options.WithGatewayContext(context);
            http.Response.Headers["x-marginal-request-id"] = context.RequestId;
            var outcome = "ok";
            if (stream)
            {
                outcome = await StreamAsync(http, pipeline, messages, options, context, dialect, metrics, started);
            }
            else
            {
                var response = await pipeline.GetResponseAsync(messages, options, cancellationToken);
                ChatCompletionsApi.WriteRouteHeaders(http.Response, context);
                http.Response.ContentType = "application/json";
                dialect.WriteAnswer(http.Response.BodyWriter, response);
                await http.Response.BodyWriter.FlushAsync(cancellationToken);
            }
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
        catch (GatewayException error) when (!http.Response.HasStarted)
        {
            metrics.Completed(context?.ServedModel, context?.Provider, error.Code ?? error.Kind.ToString(), stream, started);
            RateLimitHeaders.Write(http.Response, context?.Admission);
            await dialect.WriteErrorAsync(http, error);
        }
        catch (BadHttpRequestException tooLarge) when (tooLarge.StatusCode == StatusCodes.Status413PayloadTooLarge && !http.Response.HasStarted)
        {
            await RequestLimits.WriteTooLargeAsync(http);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            metrics.Completed(context?.ServedModel, context?.Provider, "client_closed", stream, started);
        }
    }

    // As in chat: what is written goes out as soon as the upstream has nothing more in hand, never waiting on the next update.
    private static async Task<string> StreamAsync(HttpContext http, IChatClient pipeline, List<ChatMessage> messages, ChatOptions options, GatewayContext context,
        IDialect dialect, GatewayMetrics metrics, long started)
    {
        var cancellationToken = http.RequestAborted;
        await using var updates = pipeline.GetStreamingResponseAsync(messages, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
        // Until the first update is in hand the answer can still be a plain JSON error with the right status.
        var more = await updates.MoveNextAsync();
        var response = http.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        ChatCompletionsApi.WriteRouteHeaders(response, context);
        var output = response.BodyWriter;
        dialect.StartStream(output);
        var firstToken = true;
        var outcome = "ok";
        ChatFinishReason? finish = null;
        try
        {
            var unflushed = true;
            while (more)
            {
                finish = updates.Current.FinishReason ?? finish;
                unflushed |= dialect.WriteUpdate(output, updates.Current);
                var next = updates.MoveNextAsync();
                if (unflushed && !next.IsCompleted)
                {
                    try
                    {
                        await output.FlushAsync(cancellationToken);
                    }
                    catch
                    {
                        // An async iterator must not be disposed while a MoveNextAsync is in flight.
                        try { await next; } catch (Exception) { }
                        throw;
                    }
                    unflushed = false;
                    if (firstToken)
                    {
                        firstToken = false;
                        metrics.FirstToken(context.ServedModel, started);
                    }
                }
                more = await next;
            }
            dialect.EndStream(output, finish, context.Usage);
        }
        catch (GatewayException error)
        {
            dialect.FailStream(output, error);
            outcome = error.Code ?? "stream_error";
        }
        await output.FlushAsync(cancellationToken);
        return outcome;
    }
}
