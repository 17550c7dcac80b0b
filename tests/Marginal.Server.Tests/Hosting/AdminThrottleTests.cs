using System.Net;
using Marginal.Server.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace Marginal.Server.Tests.Hosting;

public sealed class AdminThrottleTests
{
    private static readonly IPAddress Client = IPAddress.Parse("192.0.2.7");

    [Fact]
    public void Failures_PastTheLimit_ThrottleUntilTheWindowEnds()
    {
        var time = new FakeTimeProvider();
        var throttle = new AdminThrottle(time, maxFailures: 3, window: TimeSpan.FromSeconds(60));
        for (var i = 0; i < 3; i++)
        {
            Assert.False(throttle.IsThrottled(Client, out _));
            throttle.Failed(Client);
        }

        Assert.True(throttle.IsThrottled(Client, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(60), retryAfter);
        Assert.False(throttle.IsThrottled(IPAddress.Parse("192.0.2.8"), out _));
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.True(throttle.IsThrottled(Client, out retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(1), retryAfter);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(throttle.IsThrottled(Client, out _));
        throttle.Failed(Client);
        Assert.False(throttle.IsThrottled(Client, out _));
    }

    [Fact]
    public void Ipv6_CountedPerSlash64()
    {
        var throttle = new AdminThrottle(new FakeTimeProvider(), maxFailures: 2);

        throttle.Failed(IPAddress.Parse("2001:db8:1:2::1"));
        throttle.Failed(IPAddress.Parse("2001:db8:1:2::ffff"));

        Assert.True(throttle.IsThrottled(IPAddress.Parse("2001:db8:1:2:abcd::9"), out _));
        Assert.False(throttle.IsThrottled(IPAddress.Parse("2001:db8:1:3::1"), out _));
    }

    [Fact]
    public void ManyAddresses_MemoryBounded_NewcomersShareOneWindow()
    {
        var throttle = new AdminThrottle(new FakeTimeProvider(), maxFailures: 2, maxAddresses: 100);
        for (var i = 0; i < 100; i++)
        {
            throttle.Failed(new IPAddress([10, 0, 0, (byte)i]));
        }

        throttle.Failed(IPAddress.Parse("10.0.1.1"));
        throttle.Failed(IPAddress.Parse("10.0.1.2"));

        Assert.True(throttle.IsThrottled(IPAddress.Parse("10.0.1.3"), out _));
        Assert.False(throttle.IsThrottled(new IPAddress([10, 0, 0, 5]), out _));
    }
}
