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
    /// <summary>How an answer streams in a dialect: its opening, each update, its end and a failure after bytes left.</summary>
    public interface IStreamWriter : IDisposable
    {
        void StartStream(IBufferWriter<byte> output);

        /// <summary>Writes one streamed update; false when it carried nothing a client sees.</summary>
        bool WriteUpdate(IBufferWriter<byte> output, ChatResponseUpdate update);

        /// <summary>Ends the stream once the pipeline has finished: <paramref name="context"/> holds the usage and cost.</summary>
        void EndStream(IBufferWriter<byte> output, ChatFinishReason? finishReason, GatewayContext context);

        void FailStream(IBufferWriter<byte> output, GatewayException error);
    }

    /// <summary>What differs between dialects: how a body becomes a chat request, and how answers and errors are written.</summary>
    public interface IDialect : IStreamWriter
    {
        /// <summary>Translates the parsed body; throws <see cref="GatewayException"/> naming the field at fault.</summary>
        ChatCompletionRequest Translate(JsonElement body);

        /// <summary>The error raised by the chat checks, with the dialect's name for the field.</summary>
        GatewayException Rename(GatewayException error);

        Task WriteErrorAsync(HttpContext http, GatewayException error);

        /// <summary>Writes a whole, non-streamed answer.</summary>
        void WriteAnswer(IBufferWriter<byte> output, ChatResponse response);
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
            context = ChatCompletionsApi.Attach(http, request, key, options, time, includeStreamUsage: stream);
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
            ChatCompletionsApi.Record(metrics, context, outcome, stream, started);
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

    /// <summary>
    /// Streams the answer in <paramref name="writer"/>'s dialect (chat's too); returns the outcome for metrics (<c>ok</c> or the
    /// code of the error that ended the stream). What is written goes to the client as soon as the upstream has nothing
    /// more in hand: no update waits on the next one, and updates that arrived together leave in one write.
    /// </summary>
    internal static async Task<string> StreamAsync(HttpContext http, IChatClient pipeline, List<ChatMessage> messages, ChatOptions options, GatewayContext context,
        IStreamWriter writer, GatewayMetrics metrics, long started)
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
        writer.StartStream(output);
        var firstToken = true;
        var wrote = false;
        var outcome = "ok";
        ChatFinishReason? finish = null;
        try
        {
            var unflushed = true;
            while (more)
            {
                finish = updates.Current.FinishReason ?? finish;
                var written = writer.WriteUpdate(output, updates.Current);
                wrote |= written;
                unflushed |= written;
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
                        await SettleAsync(next);
                        throw;
                    }
                    unflushed = false;
                    if (firstToken && wrote)
                    {
                        firstToken = false;
                        metrics.FirstToken(context.ServedModel, started);
                    }
                }
                more = await next;
            }
            writer.EndStream(output, finish, context);
        }
        catch (GatewayException error)
        {
            // Bytes are out: the status is fixed, so the stream fails the dialect's way, with an error event.
            writer.FailStream(output, error);
            outcome = error.Code ?? "stream_error";
        }
        await output.FlushAsync(cancellationToken);
        if (firstToken && wrote)
        {
            metrics.FirstToken(context.ServedModel, started);
        }
        return outcome;
    }

    private static async Task SettleAsync(ValueTask<bool> pending)
    {
        try
        {
            await pending;
        }
        catch (Exception)
        {
            // The flush failure is the one that matters; the upstream's is a consequence of the same cancellation.
        }
    }
}
