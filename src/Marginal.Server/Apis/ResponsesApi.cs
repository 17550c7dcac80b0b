using System.Buffers;
using System.Text.Json;
using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Gateway.Wire.Responses;
using Marginal.Server.Telemetry;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.AI;

namespace Marginal.Server.Apis;

/// <summary>
/// <c>POST /v1/responses</c>: the OpenAI Responses API, translated to chat and served down the same path
/// (<see cref="DialectExchange"/>); answers are a response object or its typed event stream; errors in OpenAI's format.
/// </summary>
public static class ResponsesApi
{
    public static IEndpointRouteBuilder MapResponsesApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/responses", (HttpContext http, IChatClient pipeline, GatewayMetrics metrics, TimeProvider time) =>
            DialectExchange.HandleAsync(http, pipeline, metrics, time, () => new Dialect(time)));
        return app;
    }

    private sealed class Dialect(TimeProvider time) : DialectExchange.IDialect
    {
        private ResponsesWriter? _writer;

        public ChatCompletionRequest Translate(JsonElement body)
        {
            var call = ResponsesRequestReader.Translate(body);
            _writer = new ResponsesWriter(call.Chat.Model ?? "", call.Echo, time.GetUtcNow());
            return call.Chat;
        }

        public GatewayException Rename(GatewayException error) => ResponsesRequestReader.Rename(error);

        public Task WriteErrorAsync(HttpContext http, GatewayException error) => OpenAIErrors.WriteAsync(http, error);

        public void WriteAnswer(IBufferWriter<byte> output, ChatResponse response) => _writer!.WriteResponse(output, response);

        public void StartStream(IBufferWriter<byte> output) => _writer!.Start(output);

        public bool WriteUpdate(IBufferWriter<byte> output, ChatResponseUpdate update) => _writer!.Write(output, update);

        public void EndStream(IBufferWriter<byte> output, ChatFinishReason? finishReason, GatewayContext context) => _writer!.Complete(output, finishReason, context.Usage);

        public void FailStream(IBufferWriter<byte> output, GatewayException error) => _writer!.Fail(output, error.Message, error.Code);

        public void Dispose() => _writer?.Dispose();
    }
}
