using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Gateway.Configuration;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Providers.Anthropic;

/// <summary>
/// The Messages request the live provider would send for a chat request, captured at the HTTP boundary instead of sent.
/// It runs the very client a live call runs (<see cref="AnthropicProvider.Create"/>: the SDK's Microsoft.Extensions.AI
/// adapter plus the gateway's shaping), so system prompts, tools and tool choice, tool calls and results, images
/// (base64 and URL), stop sequences, <c>max_tokens</c> and the end-user id are mapped one way only, whether the request
/// goes live or into a Message Batch. Its handler answers every request itself with an empty message: nothing leaves
/// the process. Thread-safe.
/// </summary>
internal sealed class AnthropicRequestCapture : IDisposable
{
    private readonly UpstreamProvider _provider;

    public AnthropicRequestCapture(string name, ProviderConfig config)
    {
        // The SDK refuses to build a request without credentials; this placeholder never leaves the process.
        _provider = AnthropicProvider.Create(name, config, apiKey: "captured-not-sent", new HttpClient(new CaptureHandler()));
    }

    /// <summary>The JSON body of the <c>POST /v1/messages</c> the live provider would send for these messages and options.</summary>
    public async Task<JsonObject> ParamsAsync(IEnumerable<ChatMessage> messages, ChatOptions options, CancellationToken cancellationToken)
    {
        var slot = CaptureHandler.Begin();
        await _provider.Chat.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        return JsonNode.Parse(slot.Body ?? throw new InvalidOperationException("The Anthropic client sent no request to capture."))!.AsObject();
    }

    public void Dispose() => _provider.Dispose();

    /// <summary>Keeps the request body for the caller's async flow and answers with a minimal, valid Messages API message.</summary>
    private sealed class CaptureHandler : HttpMessageHandler
    {
        private const string EmptyMessage =
            """{"id":"msg_captured","type":"message","role":"assistant","model":"captured","content":[],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}""";

        private static readonly AsyncLocal<Slot?> Current = new();

        public static Slot Begin() => Current.Value = new Slot();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (Current.Value is { } slot && request.Content is { } content)
            {
                slot.Body = await content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            }
            return new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(EmptyMessage, Encoding.UTF8, "application/json") };
        }
    }

    private sealed class Slot
    {
        public string? Body { get; set; }
    }
}
