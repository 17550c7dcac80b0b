using Marginal.Storage.Redis;
using Marginal.Testing.Services;
using StackExchange.Redis;

namespace Marginal.Storage.Tests.Redis;

/// <summary>The Redis building blocks against a real redis-server; each test uses keys of its own.</summary>
public sealed class RedisBuildingBlockTests : IAsyncLifetime
{
    private ConnectionMultiplexer _redis = null!;
    private readonly string _prefix = $"t{Guid.NewGuid():N}";

    public async Task InitializeAsync() => _redis = await ConnectionMultiplexer.ConnectAsync((await RedisServer.Shared).Endpoint);

    public async Task DisposeAsync() => await _redis.DisposeAsync();

    [Fact]
    public async Task ByteStore_SetWithTtl_ReadBackThenGone()
    {
        var bytes = new RedisByteStore(_redis.GetDatabase(), _prefix);
        byte[] value = [0, 1, 2, 255];

        await bytes.SetAsync("answer", value, TimeSpan.FromSeconds(1));
        var read = await bytes.GetAsync("answer");
        await Task.Delay(1500);

        Assert.Equal(value, read);
        Assert.Null(await bytes.GetAsync("answer"));
    }

    [Fact]
    public async Task ConfigChanges_Published_ReachEverySubscribedNode()
    {
        await using var other = await ConnectionMultiplexer.ConnectAsync((await RedisServer.Shared).Endpoint);
        var heard = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var subscription = await new RedisConfigChanges(other, _prefix).SubscribeAsync(what => heard.TrySetResult(what));

        var listeners = await new RedisConfigChanges(_redis, _prefix).PublishAsync("keys");

        Assert.Equal(1, listeners);
        Assert.Equal("keys", await heard.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task CatchUpAsync_ReadFailsTwice_TriedAgainUntilItSucceeds()
    {
        var changes = new RedisConfigChanges(_redis, _prefix);
        await using var subscription = await changes.SubscribeAsync(_ => { });
        var tries = 0;

        await changes.CatchUpAsync(_ => Task.FromResult(++tries == 3), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(3, tries);
    }

    [Fact]
    public async Task CatchUpAsync_NotSubscribed_NeverReadsUntilStopped()
    {
        // Without a subscription the probe is never heard: reading the store then could miss what is announced meanwhile.
        var changes = new RedisConfigChanges(_redis, _prefix);
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(7));
        var tries = 0;

        await changes.CatchUpAsync(_ => Task.FromResult(++tries > 0), stopping.Token).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(0, tries);
    }

    [Fact]
    public async Task RedisDown_ByteStore_MissesAndDropsWrites()
    {
        await using var server = await RedisServer.StartAsync();
        await using var redis = await ConnectionMultiplexer.ConnectAsync($"{server.Endpoint},abortConnect=false,connectTimeout=500,syncTimeout=500,asyncTimeout=500");
        var bytes = new RedisByteStore(redis.GetDatabase(), _prefix);
        Assert.True(await bytes.SetAsync("answer", new byte[] { 1 }, TimeSpan.FromMinutes(1)));

        server.Stop();

        Assert.Null(await bytes.GetAsync("answer"));
        Assert.False(await bytes.SetAsync("answer", new byte[] { 1 }, TimeSpan.FromMinutes(1)));
    }
}
