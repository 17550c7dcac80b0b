using System.Net;
using System.Net.Http.Headers;
using Marginal.Bench.Stub;

namespace Marginal.Benchmarks;

/// <summary>
/// An HTTP handler that answers like the load-test stub without a socket: it reads the whole request body (so the
/// adapter under test really serializes it) and returns the stub's chat completion, or its SSE stream when the
/// body asks for one. Not thread-safe: one benchmark thread at a time.
/// </summary>
public sealed class InMemoryUpstream : HttpMessageHandler
{
    private readonly MemoryStream _requestBody = new();

    /// <summary>Bytes of the last request body (for checks in setup).</summary>
    public ReadOnlySpan<byte> LastRequest => _requestBody.GetBuffer().AsSpan(0, (int)_requestBody.Length);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        _requestBody.SetLength(0);
        if (request.Content is { } content)
        {
            await content.CopyToAsync(_requestBody, cancellationToken);
        }
        var stream = LastRequest.IndexOf("\"stream\":true"u8) >= 0;
        var body = new ByteArrayContent(stream ? StubResponses.Stream : StubResponses.Completion);
        body.Headers.ContentType = new MediaTypeHeaderValue(stream ? "text/event-stream" : "application/json");
        return new HttpResponseMessage(HttpStatusCode.OK) { Content = body, RequestMessage = request };
    }

    protected override void Dispose(bool disposing)
    {
        _requestBody.Dispose();
        base.Dispose(disposing);
    }
}
