using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Marginal.Server.Tests.Apis;

/// <summary>Server-sent event framing as OpenAI sends it, checked byte by byte with a raw client.</summary>
public sealed class StreamingTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private Task<HttpResponseMessage> PostAsync(string body) =>
        _host.Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task Stream_WithoutIncludeUsage_ChunksThenDoneAndNoUsage()
    {
        var response = await PostAsync("""{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"a b c"}]}""");
        var events = await SseEvents.ReadAsync(response);

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events.SkipLast(1).Select(e => JsonNode.Parse(e)!).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c["object"]!.GetValue<string>()));
        Assert.All(chunks, c => Assert.Null(c["usage"]));
        Assert.Equal("assistant", chunks[0]["choices"]![0]!["delta"]!["role"]!.GetValue<string>());
        Assert.Equal("stop", chunks[^1]["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.Single(chunks, c => c["choices"]![0]!["finish_reason"] is not null);
        Assert.Single(chunks.Select(c => c["id"]!.GetValue<string>()).Distinct());
        Assert.Equal("Echo: a b c", SseEvents.Text(events));
    }

    [Fact]
    public async Task Stream_WithIncludeUsage_FinalChunkCarriesUsageAndNoChoices()
    {
        var response = await PostAsync("""{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b c"}]}""");
        var events = await SseEvents.ReadAsync(response);

        var usageChunk = JsonNode.Parse(events[^2])!;
        Assert.Single(events.SkipLast(1).Select(e => JsonNode.Parse(e)!), c => c["choices"] is JsonArray { Count: > 0 } a && a[0]!["finish_reason"] is not null);
        Assert.Empty(usageChunk["choices"]!.AsArray());
        Assert.Equal(3, usageChunk["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(4, usageChunk["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Equal(7, usageChunk["usage"]!["total_tokens"]!.GetValue<int>());
        Assert.Equal("[DONE]", events[^1]);
    }

    [Fact]
    public async Task Stream_UpstreamPausesAfterFirstChunk_ClientAlreadyHasIt()
    {
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _host.Primary.HoldAfterFirstChunk = hold;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"later words"}]}""", Encoding.UTF8, "application/json"),
        };

        using var response = await _host.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var firstContent = "";
        // If the gateway buffered, this loop would wait for the held upstream forever; the cancellation turns that into a failure.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!firstContent.Contains("Echo:", StringComparison.Ordinal))
        {
            firstContent += await reader.ReadLineAsync(timeout.Token);
        }
        var upstreamStillHeld = !hold.Task.IsCompleted;
        hold.SetResult();
        var rest = await reader.ReadToEndAsync();

        Assert.True(upstreamStillHeld);
        Assert.Contains("data: [DONE]", rest, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stream_UnknownModel_IsPlainJsonError()
    {
        var response = await PostAsync("""{"model":"nope","stream":true,"messages":[{"role":"user","content":"x"}]}""");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
    }
}
