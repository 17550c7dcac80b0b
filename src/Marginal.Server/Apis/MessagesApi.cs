using System.Buffers;
using System.Text.Json;
using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Gateway.Model;
using Marginal.Gateway.Tokens;
using Marginal.Gateway.Wire.Anthropic;
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
/// <c>POST /v1/messages</c> and <c>POST /v1/messages/count_tokens</c>: Anthropic's Messages API for any configured model
/// (OpenAI-compatible, local or Anthropic), translated to chat and served down the same path
/// (<see cref="DialectExchange"/>); answers in Anthropic's message object or event stream, errors in Anthropic's format.
/// The key may come in <c>x-api-key</c> (<see cref="KeyAuthentication"/>); <c>anthropic-version</c> is accepted.
/// </summary>
public static class MessagesApi
{
    public static IEndpointRouteBuilder MapMessagesApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/messages", (HttpContext http, IChatClient pipeline, GatewayMetrics metrics, TimeProvider time) =>
            DialectExchange.HandleAsync(http, pipeline, metrics, time, () => new Dialect()));
        app.MapPost("/v1/messages/count_tokens", CountTokensAsync);
        return app;
    }

    /// <summary>
    /// The prompt's tokens, counted with the model's tokenizer as the gateway meters unreported usage
    /// (<c>TokenCounter</c>; o200k_base where the price book names none). Like Anthropic's own count, an estimate; no
    /// model is called and nothing is recorded.
    /// </summary>
    private static async Task CountTokensAsync(HttpContext http, GatewayModelSource models)
    {
        try
        {
            MessagesCall call;
            try
            {
                using var body = await JsonDocument.ParseAsync(http.Request.Body, new JsonDocumentOptions { MaxDepth = 64 }, http.RequestAborted);
                call = MessagesRequestReader.Translate(body.RootElement, countOnly: true);
            }
            catch (JsonException)
            {
                throw GatewayException.InvalidRequest("The request body is not valid JSON.", code: "invalid_json");
            }
            List<ChatMessage> messages;
            try
            {
                (messages, _) = ChatRequestReader.ToChat(call.Chat);
            }
            catch (GatewayException error)
            {
                throw MessagesRequestReader.Rename(error);
            }
            ModelPermission.Check(KeyAuthentication.KeyOf(http), call.Model);
            if (!models.Current.Models.TryGetValue(call.Model, out var model) && !models.Current.Routes.ContainsKey(call.Model))
            {
                throw new GatewayException(GatewayErrorKind.NotFound, $"model: {ClientBounds.Shown(call.Model)} is not a configured model.", "model_not_found", "model");
            }
            var tokens = TokenCounter.CountPrompt(model?.Primary.Catalog?.TokenizerEncoding, messages);
            http.Response.ContentType = "application/json";
            await using var json = new Utf8JsonWriter(http.Response.BodyWriter);
            json.WriteStartObject();
            json.WriteNumber("input_tokens"u8, tokens);
            json.WriteEndObject();
        }
        catch (GatewayException error) when (!http.Response.HasStarted)
        {
            await AnthropicErrors.WriteAsync(http, error);
        }
    }

    private sealed class Dialect : DialectExchange.IDialect
    {
        private MessagesWriter? _writer;

        public ChatCompletionRequest Translate(JsonElement body)
        {
            var call = MessagesRequestReader.Translate(body);
            _writer = new MessagesWriter(call.Model);
            return call.Chat;
        }

        public GatewayException Rename(GatewayException error) => MessagesRequestReader.Rename(error);

        public Task WriteErrorAsync(HttpContext http, GatewayException error) => AnthropicErrors.WriteAsync(http, error);

        public void WriteAnswer(IBufferWriter<byte> output, ChatResponse response) => _writer!.WriteMessage(output, response);

        public void StartStream(IBufferWriter<byte> output) => _writer!.Start(output);

        public bool WriteUpdate(IBufferWriter<byte> output, ChatResponseUpdate update) => _writer!.Write(output, update);

        public void EndStream(IBufferWriter<byte> output, ChatFinishReason? finishReason, GatewayContext context) => _writer!.Complete(output, finishReason, context.Usage);

        public void FailStream(IBufferWriter<byte> output, GatewayException error) => _writer!.Fail(output, error);

        public void Dispose() => _writer?.Dispose();
    }
}
