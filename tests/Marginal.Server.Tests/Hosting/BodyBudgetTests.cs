using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Server.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Marginal.Server.Tests.Hosting;

// The tests throw what the runtime throws when an allocation fails.
#pragma warning disable CA2201

/// <summary>Large request bodies hold their bytes of server.max_body_bytes_in_flight until answered; an allocation failure is the gateway's 503.</summary>
public sealed class BodyBudgetTests
{
    [Fact]
    public async Task Acquire_PastCapacity_WaitsFirstComeFirstServed()
    {
        var budget = new BodyBudget(100, new FakeTimeProvider());
        Assert.True(await budget.AcquireAsync(60, CancellationToken.None));

        var large = budget.AcquireAsync(60, CancellationToken.None).AsTask();
        var small = budget.AcquireAsync(30, CancellationToken.None).AsTask();

        // The small one fits but waits behind the large one: no large body starves.
        Assert.False(large.IsCompleted);
        Assert.False(small.IsCompleted);
        budget.Release(60);
        Assert.True(await large);
        Assert.True(await small);
        Assert.Equal(0, budget.Waiting);
    }

    [Fact]
    public async Task Acquire_NoRoomForMaxWait_False()
    {
        var time = new FakeTimeProvider();
        var budget = new BodyBudget(100, time);
        Assert.True(await budget.AcquireAsync(100, CancellationToken.None));

        var waiting = budget.AcquireAsync(1, CancellationToken.None).AsTask();
        time.Advance(BodyBudget.MaxWait);

        Assert.False(await waiting);
        Assert.Equal(0, budget.Waiting);
    }

    [Fact]
    public async Task Acquire_ClientLeavesWhileWaiting_ThrowsAndFreesItsPlace()
    {
        var budget = new BodyBudget(100, new FakeTimeProvider());
        Assert.True(await budget.AcquireAsync(100, CancellationToken.None));
        using var left = new CancellationTokenSource();

        var waiting = budget.AcquireAsync(50, left.Token).AsTask();
        await left.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(0, budget.Waiting);
        budget.Release(100);
        Assert.True(await budget.AcquireAsync(100, CancellationToken.None));
    }

    [Fact]
    public async Task Chat_TwoLargeBodiesOverTheBudget_SecondWaitsUntilTheFirstIsAnswered()
    {
        await using var host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s)
            .Replace("max_request_body_bytes: 65536", "max_request_body_bytes: 1048576\n  max_body_bytes_in_flight: 1048576", StringComparison.Ordinal));
        var budget = host.App.Services.GetRequiredService<BodyBudget>();
        var hold = new TaskCompletionSource();
        host.Primary.HoldAfterFirstChunk = hold;
        string Body(bool stream) => $$"""{"model":"gpt-solo","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"{{new string('a', 700_000)}}"}]}""";

        // The first streams its first chunk, then the upstream holds it: its body's bytes stay taken.
        using var first = await host.Http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        { Content = new StringContent(Body(stream: true), Encoding.UTF8, "application/json") }, HttpCompletionOption.ResponseHeadersRead);
        var second = host.Http.PostAsync("/v1/chat/completions", new StringContent(Body(stream: false), Encoding.UTF8, "application/json"));
        while (budget.Waiting == 0)
        {
            await Task.Delay(10);
        }

        Assert.Single(host.Primary.Requests);
        hold.SetResult();
        await (await first.Content.ReadAsStreamAsync()).CopyToAsync(Stream.Null);
        using var answered = await second;
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        Assert.Equal(2, host.Primary.Requests.Count);
    }

    [Fact]
    public async Task OutOfMemory_AnsweredAs503ServerError_NotInternalNorUpstream()
    {
        var guard = new ErrorGuard(_ => throw new OutOfMemoryException(), NullLogger<ErrorGuard>.Instance);
        var http = new DefaultHttpContext();
        http.Response.Body = new MemoryStream();

        await guard.InvokeAsync(http);

        Assert.Equal(StatusCodes.Status503ServiceUnavailable, http.Response.StatusCode);
        Assert.Equal("1", http.Response.Headers.RetryAfter.ToString());
        http.Response.Body.Position = 0;
        var error = JsonNode.Parse(http.Response.Body)!["error"]!;
        Assert.Equal(("server_error", "gateway_out_of_memory"), (error["type"]!.GetValue<string>(), error["code"]!.GetValue<string>()));
    }

    [Fact]
    public void Config_InFlightBudgetUnderTheBodyLimit_OneLineNamingTheKey()
    {
        var error = Assert.Throws<Marginal.Gateway.Configuration.ConfigException>(() => Marginal.Gateway.Configuration.ConfigLoader.Parse(
            "server:\n  max_request_body_bytes: 2048\n  max_body_bytes_in_flight: 1024\n", "m.yaml"));

        Assert.Equal("m.yaml: server.max_body_bytes_in_flight: must be at least server.max_request_body_bytes (2048), got 1024", error.Message);
    }
}
