using System.Net;
using System.Text;
using Marginal.Testing.Services;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// An upstream that closes its connections without saying so beforehand: after each answer, or once they have been
/// idle a short while (as some inference servers and proxies do). The gateway's pooled connection may be closed at the
/// moment it sends on it; a request that failed before any of it reached the upstream is sent again on a fresh
/// connection, so the client never sees the stale connection. <c>gpt-solo</c> has no fallback: a failure would be a 503.
/// </summary>
public sealed class StaleUpstreamConnectionTests
{
    private const string Request = """{"model":"gpt-solo","messages":[{"role":"user","content":"hi"}]}""";

    [Fact]
    public async Task ChatCompletions_UpstreamClosesAfterEachAnswer_EveryRequestAnswered()
    {
        await using var host = await GatewayHost.StartAsync();
        host.Primary.CloseAfterEachAnswer = true;
        var statuses = new List<HttpStatusCode>();

        // Back to back: the next request is sent as soon as the last answer is read, before or after the close arrives.
        for (var i = 0; i < 200; i++)
        {
            using var response = await host.Http.PostAsync("/v1/chat/completions", new StringContent(Request, Encoding.UTF8, "application/json"));
            statuses.Add(response.StatusCode);
        }

        // Until the gateway has seen the upstream close a connection right after an answer, a close can still cross a
        // request already on the wire: its bytes went out, so it is not sent again (it could have been served). That
        // window is the first few requests; from then on every request goes on a fresh connection and none may fail.
        Assert.True(statuses.Take(5).Count(s => s != HttpStatusCode.OK) <= 1, string.Join(", ", statuses.Take(5)));
        Assert.All(statuses.Skip(5), s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.InRange(host.Primary.Requests.Count, 199, 200);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(60)]
    public async Task ChatCompletions_UpstreamClosesIdleConnections_EveryRequestAnswered(int idleMs)
    {
        TcpRelay relay = null!;
        await using var host = await GatewayHost.StartAsync((primary, secondary) =>
        {
            relay = TcpRelay.Start($"127.0.0.1:{primary.OpenAIBaseUrl.Port}");
            relay.CloseIdleAfter = TimeSpan.FromMilliseconds(idleMs);
            return GatewayHost.DefaultYaml(primary, secondary).Replace(
                $"base_url: {primary.OpenAIBaseUrl}", $"base_url: http://{relay.Endpoint}/v1", StringComparison.Ordinal);
        });
        await using var _ = relay;
        // Pauses spread around the idle time, so some requests go out on a connection the relay is closing just then.
        var random = new Random(27);
        var statuses = new List<HttpStatusCode>();

        for (var i = 0; i < 80; i++)
        {
            using var response = await host.Http.PostAsync("/v1/chat/completions", new StringContent(Request, Encoding.UTF8, "application/json"));
            statuses.Add(response.StatusCode);
            await Task.Delay(random.Next(0, 2 * idleMs + 1));
        }

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(80, host.Primary.Requests.Count);
    }
}
