using Marginal.Core.Errors;
using Marginal.Gateway.Providers;
using Microsoft.Extensions.Time.Testing;
using Polly.Timeout;

namespace Marginal.Gateway.Tests.Providers;

public sealed class ProviderErrorsTests
{
    [Theory]
    [InlineData(400, GatewayErrorKind.InvalidRequest, false)]
    [InlineData(401, GatewayErrorKind.UpstreamError, true)]
    [InlineData(408, GatewayErrorKind.UpstreamTimeout, true)]
    [InlineData(429, GatewayErrorKind.RateLimited, true)]
    [InlineData(500, GatewayErrorKind.UpstreamError, true)]
    [InlineData(503, GatewayErrorKind.UpstreamUnavailable, true)]
    [InlineData(529, GatewayErrorKind.UpstreamUnavailable, true)]
    [InlineData(504, GatewayErrorKind.UpstreamTimeout, true)]
    public void FromStatus_MapsKindAndRetryability(int status, GatewayErrorKind kind, bool retryable)
    {
        var error = ProviderErrors.FromStatus("p", status, "msg", null);

        Assert.Equal(kind, error.Kind);
        Assert.Equal(retryable, error.IsRetryableElsewhere);
        Assert.Equal(status, error.UpstreamStatus);
    }

    [Fact]
    public void Classify_PollyTimeout_IsUpstreamTimeout() =>
        Assert.Equal(GatewayErrorKind.UpstreamTimeout, ProviderErrors.Classify(new TimeoutRejectedException(), "p").Kind);

    [Fact]
    public void Classify_ConnectionRefused_IsUnavailable() =>
        Assert.Equal(GatewayErrorKind.UpstreamUnavailable, ProviderErrors.Classify(new HttpRequestException("refused"), "p").Kind);

    [Fact]
    public void Classify_UnknownException_HidesItsMessage()
    {
        var error = ProviderErrors.Classify(new NotImplementedException("secret internals sk-123"), "p");

        Assert.DoesNotContain("sk-123", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"error":{"message":"Rate limit reached","type":"requests"}}""", "Rate limit reached")]
    [InlineData("""{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}""", "Overloaded")]
    [InlineData("not json", null)]
    [InlineData("", null)]
    public void ReadMessage_OpenAIAndAnthropicBodies(string body, string? expected) =>
        Assert.Equal(expected, ProviderErrors.ReadMessage(body));

    [Fact]
    public void ParseRetryAfter_SecondsAndHttpDate()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));

        Assert.Equal(TimeSpan.FromSeconds(7), ProviderErrors.ParseRetryAfter("7", time));
        Assert.Equal(TimeSpan.FromSeconds(30), ProviderErrors.ParseRetryAfter("Fri, 27 Nov 2026 12:00:30 GMT", time));
        Assert.Null(ProviderErrors.ParseRetryAfter("soon", time));
    }
}
