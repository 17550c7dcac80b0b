using Marginal.Core.Tenancy;

namespace Marginal.Core.Tests.Tenancy;

public sealed class TenantNamesTests
{
    [Theory]
    [InlineData("acme")]
    [InlineData("a")]
    [InlineData("acme.prod_2-x")]
    [InlineData("0acme")]
    public void IsValid_LettersDigitsDotUnderscoreHyphen_IsAccepted(string name) => Assert.True(TenantNames.IsValid(name));

    [Theory]
    [InlineData("")]
    [InlineData("acme:prod")]
    [InlineData("acme\0")]
    [InlineData("acme\u202Eorp")]
    [InlineData("acme prod")]
    [InlineData("-acme")]
    [InlineData("=HYPERLINK()")]
    [InlineData(".acme")]
    [InlineData("café")]
    [InlineData("acme%3A")]
    public void IsValid_OtherCharactersOrStart_IsRefused(string name) => Assert.False(TenantNames.IsValid(name));

    [Fact]
    public void IsValid_LengthBound_AcceptsSixtyFourNotSixtyFive()
    {
        Assert.True(TenantNames.IsValid(new string('a', TenantNames.MaxLength)));
        Assert.False(TenantNames.IsValid(new string('a', TenantNames.MaxLength + 1)));
        Assert.False(TenantNames.IsValid(new string('a', 1_000_000)));
    }

    [Theory]
    [InlineData("acme", "acme")]
    [InlineData("acme:prod", "acme%3Aprod")]
    [InlineData("50%", "50%25")]
    [InlineData("café", "caf%C3%A9")]
    public void IdPrefix_EscapesEverythingOutsideTheRule(string tenant, string expected) => Assert.Equal(expected, TenantNames.IdPrefix(tenant));

    [Fact]
    public void IdPrefix_NeverHoldsTheSeparator() =>
        Assert.DoesNotContain(':', TenantNames.IdPrefix("a:b:c\u202E:"));
}
