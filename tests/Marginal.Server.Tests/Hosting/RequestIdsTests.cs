using System.Text.RegularExpressions;
using Marginal.Server.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace Marginal.Server.Tests.Hosting;

public sealed partial class RequestIdsTests
{
    [GeneratedRegex("^req_[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$")]
    private static partial Regex Version7Id();

    [Fact]
    public void New_AnyTime_IsAVersion7UuidAfterThePrefix()
    {
        var id = RequestIds.New(TimeProvider.System);

        Assert.Matches(Version7Id(), id);
        Assert.Equal(7, Guid.Parse(id[4..]).Version);
    }

    [Fact]
    public void New_AtAKnownTime_StartsWithItsUnixMilliseconds()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(0x0193_6A2B_3C4D));

        var id = RequestIds.New(time);

        Assert.StartsWith("req_01936a2b3c4d", id, StringComparison.Ordinal);
    }

    [Fact]
    public void New_LaterMillisecond_SortsAfter()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-28T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var first = RequestIds.New(time);
        time.Advance(TimeSpan.FromMilliseconds(1));

        var second = RequestIds.New(time);

        Assert.True(string.CompareOrdinal(first, second) < 0, $"{first} should sort before {second}");
    }

    private static string IdOf(string tenant, string idempotencyKey)
    {
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        http.Request.Headers["Idempotency-Key"] = idempotencyKey;
        return RequestIds.Of(http, tenant, TimeProvider.System);
    }

    [Fact]
    public void Of_TenantHoldingTheSeparator_NeverSharesAnIdWithAnotherTenant()
    {
        var colonTenant = IdOf("acme:prod", "x");
        var plainTenant = IdOf("acme", "prod:x");

        Assert.NotEqual(colonTenant, plainTenant);
        Assert.Equal("acme:prod:x", plainTenant);
        // Everything before the first ':' is the tenant, escaped: the id says whose it is.
        Assert.Equal("acme%3Aprod", colonTenant[..colonTenant.IndexOf(':', StringComparison.Ordinal)]);
    }

    [Fact]
    public void Of_ValidTenant_KeepsTheIdFormStoredBefore()
    {
        Assert.Equal("acme.prod_2-x:order-1", IdOf("acme.prod_2-x", "order-1"));
    }

    [Fact]
    public void New_ManyInOneMillisecond_AllDiffer()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-28T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

        var ids = Enumerable.Range(0, 10_000).Select(_ => RequestIds.New(time)).ToHashSet(StringComparer.Ordinal);

        Assert.Equal(10_000, ids.Count);
    }
}
