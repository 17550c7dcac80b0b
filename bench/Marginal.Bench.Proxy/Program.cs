using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// A bare relay for POST /v1/chat/completions: reads the client's body, sends it upstream with HttpClient
// (the same SocketsHttpHandler settings Marginal's providers use), and copies the status, content type and
// body back, streaming. No parsing, no logging, no metrics: what is left of a .NET gateway when nothing is
// done to the request. bench/load.sh runs it as the "proxy" path, built like Marginal (same project SDK,
// same GC settings), to show how much of Marginal's cost is Kestrel + HttpClient themselves.
// Usage: Marginal.Bench.Proxy PORT UPSTREAM_BASE_URL   (binds 127.0.0.1:PORT only)

if (args.Length != 2 || !int.TryParse(args[0], out var port) || port is < 1 or > 65535
    || !Uri.TryCreate(args[1].TrimEnd('/') + "/chat/completions", UriKind.Absolute, out var upstream))
{
    await Console.Error.WriteLineAsync("usage: Marginal.Bench.Proxy PORT UPSTREAM_BASE_URL (e.g. 18185 http://127.0.0.1:18181/v1)");
    return 2;
}

using var http = new HttpClient(new SocketsHttpHandler
{
    PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    AutomaticDecompression = DecompressionMethods.None,
    UseCookies = false,
})
{
    Timeout = TimeSpan.FromSeconds(120),
};

var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    kestrel.Listen(IPAddress.Loopback, port);
});
var app = builder.Build();
app.Run(async context =>
{
    if (!HttpMethods.IsPost(context.Request.Method) || !context.Request.Path.Equals("/v1/chat/completions", StringComparison.Ordinal))
    {
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        return;
    }
    var cancellationToken = context.RequestAborted;
    using var body = new MemoryStream();
    await context.Request.Body.CopyToAsync(body, cancellationToken);
    using var request = new HttpRequestMessage(HttpMethod.Post, upstream) { Content = new ByteArrayContent(body.GetBuffer(), 0, (int)body.Length) };
    request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
    if (context.Request.Headers.Authorization.ToString() is { Length: > 0 } authorization)
    {
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
    }
    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    context.Response.StatusCode = (int)response.StatusCode;
    context.Response.ContentType = response.Content.Headers.ContentType?.ToString();
    await using var upstreamBody = await response.Content.ReadAsStreamAsync(cancellationToken);
    await upstreamBody.CopyToAsync(context.Response.Body, cancellationToken);
});
await app.StartAsync();
Console.WriteLine($"proxy: relaying http://127.0.0.1:{port}/v1/chat/completions to {upstream}");
await app.WaitForShutdownAsync();
return 0;
