using Marginal.Core.Requests;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Tests.Wire;

public sealed class RateLimitHeadersTests
{
    [Fact]
    public void Write_BothWindows_WritesOpenAIHeadersWithResetInWholeSeconds()
    {
        var http = new DefaultHttpContext();

        RateLimitHeaders.Write(http.Response, new AdmissionOutcome(
            new RateLimitWindow(300, 299, TimeSpan.FromSeconds(44.2)), new RateLimitWindow(10_000, 0, TimeSpan.FromMilliseconds(10)), null));

        var headers = http.Response.Headers;
        Assert.Equal("300", headers["x-ratelimit-limit-requests"]);
        Assert.Equal("299", headers["x-ratelimit-remaining-requests"]);
        Assert.Equal("45s", headers["x-ratelimit-reset-requests"]);
        Assert.Equal("10000", headers["x-ratelimit-limit-tokens"]);
        Assert.Equal("0", headers["x-ratelimit-remaining-tokens"]);
        Assert.Equal("1s", headers["x-ratelimit-reset-tokens"]);
    }

    [Fact]
    public void Write_NoWindowCounted_WritesNothing()
    {
        var http = new DefaultHttpContext();

        RateLimitHeaders.Write(http.Response, new AdmissionOutcome(null, null, FreeTierModel: "free-model"));
        RateLimitHeaders.Write(http.Response, null);

        Assert.Empty(http.Response.Headers);
    }
}
