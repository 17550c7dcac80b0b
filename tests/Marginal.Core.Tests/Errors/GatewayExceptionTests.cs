using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Microsoft.Extensions.AI;

namespace Marginal.Core.Tests.Errors;

public sealed class GatewayExceptionTests
{
    [Theory]
    [InlineData(GatewayErrorKind.RateLimited, true)]
    [InlineData(GatewayErrorKind.UpstreamError, true)]
    [InlineData(GatewayErrorKind.UpstreamUnavailable, true)]
    [InlineData(GatewayErrorKind.UpstreamTimeout, true)]
    [InlineData(GatewayErrorKind.InvalidRequest, false)]
    [InlineData(GatewayErrorKind.Authentication, false)]
    [InlineData(GatewayErrorKind.RequestTooLarge, false)]
    public void IsRetryableElsewhere_OnlyForFailuresAnotherUpstreamMayNotHave(GatewayErrorKind kind, bool expected) =>
        Assert.Equal(expected, new GatewayException(kind, "x").IsRetryableElsewhere);

    [Fact]
    public void InvalidRequest_CarriesParamAndCode()
    {
        var error = GatewayException.InvalidRequest("bad", "messages[0].role", "invalid_value");

        Assert.Equal(GatewayErrorKind.InvalidRequest, error.Kind);
        Assert.Equal("messages[0].role", error.Param);
        Assert.Equal("invalid_value", error.Code);
    }

    [Fact]
    public void GatewayContext_AttachedToOptions_SurvivesClone()
    {
        var context = new GatewayContext();
        var options = new ChatOptions().WithGatewayContext(context);

        Assert.Same(context, options.Clone().GetGatewayContext());
        Assert.Null(new ChatOptions().GetGatewayContext());
        Assert.Null(((ChatOptions?)null).GetGatewayContext());
    }
}
