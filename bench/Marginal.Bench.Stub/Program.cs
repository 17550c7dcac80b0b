using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Marginal.Bench.Stub;

// The upstream for the whole-system load test: POST /v1/chat/completions answers with a fixed chat completion,
// or the same answer as server-sent events when the body says "stream": true. Nothing else; no logging, no
// routing, so that the direct, Marginal and Portkey paths all reach the same, cheap upstream.
// Usage: Marginal.Bench.Stub PORT [--print]   (binds 127.0.0.1:PORT only)

if (args.Length is < 1 or > 2 || !int.TryParse(args[0], out var port) || port is < 1 or > 65535)
{
    await Console.Error.WriteLineAsync("usage: Marginal.Bench.Stub PORT [--print]");
    return 2;
}
if (args.Length == 2 && args[1] == "--print")
{
    Console.WriteLine(StubResponses.Describe());
    return 0;
}

var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    kestrel.Listen(IPAddress.Loopback, port);
});
var app = builder.Build();
app.Run(Upstream.HandleAsync);
await app.StartAsync();
Console.WriteLine($"stub: serving http://127.0.0.1:{port}/v1/chat/completions");
await app.WaitForShutdownAsync();
return 0;

internal static class Upstream
{
    private static ReadOnlySpan<byte> StreamKey => "\"stream\""u8;
    private static ReadOnlySpan<byte> JsonSpace => " \t\r\n"u8;

    public static async Task HandleAsync(HttpContext http)
    {
        if (!HttpMethods.IsPost(http.Request.Method) || !http.Request.Path.Equals("/v1/chat/completions", StringComparison.Ordinal))
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        var stream = await AsksForStreamAsync(http.Request.BodyReader, http.RequestAborted);
        var response = http.Response;
        byte[] body;
        if (stream)
        {
            body = StubResponses.Stream;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
        }
        else
        {
            body = StubResponses.Completion;
            response.ContentType = "application/json";
            response.ContentLength = body.Length;
        }
        await response.BodyWriter.WriteAsync(body, http.RequestAborted);
    }

    /// <summary>Reads the whole body and looks for <c>"stream": true</c> (any JSON whitespace around the colon).</summary>
    private static async ValueTask<bool> AsksForStreamAsync(PipeReader body, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await body.ReadAsync(cancellationToken);
            if (!result.IsCompleted)
            {
                // Keep everything until the body is complete, so a key split across reads is still found.
                body.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                continue;
            }
            var found = HasStreamTrue(result.Buffer);
            body.AdvanceTo(result.Buffer.End);
            return found;
        }
    }

    private static bool HasStreamTrue(ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (reader.TryReadTo(out ReadOnlySequence<byte> _, StreamKey, advancePastDelimiter: true))
        {
            reader.AdvancePastAny(JsonSpace);
            if (!reader.IsNext((byte)':', advancePast: true))
            {
                continue;
            }
            reader.AdvancePastAny(JsonSpace);
            return reader.IsNext("true"u8);
        }
        return false;
    }
}
