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
    public async Task ReserveAsync_200ConcurrentReservations_NeverExceedTheLimit()
    {
        var budgets = new RedisBudgets(_redis.GetDatabase(), _prefix);

        // 200 requests of 0.07 USD against 10 USD: exactly 142 fit.
        var decisions = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            budgets.ReserveAsync("acme", $"req_{i}", 0.07m, 10m, TimeSpan.FromMinutes(1))));

        Assert.Equal(142, decisions.Count(d => d.Outcome == BudgetOutcome.Granted));
        Assert.Equal(58, decisions.Count(d => d.Outcome == BudgetOutcome.Refused));
        Assert.Equal((0m, 9.94m), await budgets.ReadAsync("acme"));
    }

    [Fact]
    public async Task SettleAsync_ActualBelowReservation_ReleasesReservationAndAddsActualOnce()
    {
        var budgets = new RedisBudgets(_redis.GetDatabase(), _prefix);
        await budgets.ReserveAsync("acme", "req_1", 1m, 10m, TimeSpan.FromMinutes(1));

        var first = await budgets.SettleAsync("acme", "req_1", 0.000000123m);
        var retry = await budgets.SettleAsync("acme", "req_1", 0.000000123m);

        Assert.Equal((true, 0.000000123m), first);
        Assert.Equal((false, 0.000000123m), retry);
        Assert.Equal((0.000000123m, 0m), await budgets.ReadAsync("acme"));
    }

    [Fact]
    public async Task ReserveAsync_CrashedNodesReservationExpired_StopsCounting()
    {
        var budgets = new RedisBudgets(_redis.GetDatabase(), _prefix);
        await budgets.ReserveAsync("acme", "crashed", 9m, 10m, TimeSpan.FromSeconds(2));
        Assert.Equal(BudgetOutcome.Refused, (await budgets.ReserveAsync("acme", "next", 2m, 10m, TimeSpan.FromMinutes(1))).Outcome);

        await Task.Delay(2500);
        var after = await budgets.ReserveAsync("acme", "next", 2m, 10m, TimeSpan.FromMinutes(1));

        Assert.Equal(BudgetOutcome.Granted, after.Outcome);
        Assert.Equal(2m, after.ReservedUsd);
    }

    [Fact]
    public async Task ReserveAsync_SameReservationTwice_CountsOnce()
    {
        var budgets = new RedisBudgets(_redis.GetDatabase(), _prefix);

        await budgets.ReserveAsync("acme", "req_1", 3m, 10m, TimeSpan.FromMinutes(1));
        var again = await budgets.ReserveAsync("acme", "req_1", 3m, 10m, TimeSpan.FromMinutes(1));

        Assert.Equal(BudgetOutcome.Granted, again.Outcome);
        Assert.Equal(3m, again.ReservedUsd);
    }

    [Fact]
    public async Task TryAcquireAsync_OverLimitInWindow_RefusedUntilTheWindowEnds()
    {
        var rates = new RedisRateCounters(_redis.GetDatabase(), _prefix);
        var window = TimeSpan.FromSeconds(2);

        var concurrent = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => rates.TryAcquireAsync("acme:rpm", 1, 30, window)));
        var refused = await rates.TryAcquireAsync("acme:rpm", 1, 30, window);
        await Task.Delay(refused.ResetsIn + TimeSpan.FromMilliseconds(100));
        var later = await rates.TryAcquireAsync("acme:rpm", 1, 30, window);

        Assert.Equal(30, concurrent.Count(d => d.Allowed));
        Assert.False(refused.Allowed);
        Assert.True(refused.ResetsIn > TimeSpan.Zero);
        Assert.True(later.Allowed);
        Assert.Equal(1, later.Used);
    }

    [Fact]
    public async Task TryAcquireAsync_TokensLargerThanWhatIsLeft_RefusedWithoutCounting()
    {
        var rates = new RedisRateCounters(_redis.GetDatabase(), _prefix);
        await rates.TryAcquireAsync("acme:tpm", 900, 1000, TimeSpan.FromMinutes(1));

        var big = await rates.TryAcquireAsync("acme:tpm", 200, 1000, TimeSpan.FromMinutes(1));
        var small = await rates.TryAcquireAsync("acme:tpm", 100, 1000, TimeSpan.FromMinutes(1));

        Assert.False(big.Allowed);
        Assert.True(small.Allowed);
        Assert.Equal(1000, small.Used);
    }

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
    public async Task RedisDown_BudgetsFailClosedByDefault_OpenWhenConfigured_CacheMisses()
    {
        await using var server = await RedisServer.StartAsync();
        await using var redis = await ConnectionMultiplexer.ConnectAsync($"{server.Endpoint},abortConnect=false,connectTimeout=500,syncTimeout=500,asyncTimeout=500");
        var closed = new RedisBudgets(redis.GetDatabase(), _prefix);
        var open = new RedisBudgets(redis.GetDatabase(), _prefix, failOpen: true);
        var rates = new RedisRateCounters(redis.GetDatabase(), _prefix);
        var bytes = new RedisByteStore(redis.GetDatabase(), _prefix);
        Assert.Equal(BudgetOutcome.Granted, (await closed.ReserveAsync("acme", "before", 1m, 10m, TimeSpan.FromMinutes(1))).Outcome);

        server.Stop();

        Assert.Equal(BudgetOutcome.Unavailable, (await closed.ReserveAsync("acme", "r1", 1m, 10m, TimeSpan.FromMinutes(1))).Outcome);
        Assert.Equal(BudgetOutcome.GrantedUnavailable, (await open.ReserveAsync("acme", "r2", 1m, 10m, TimeSpan.FromMinutes(1))).Outcome);
        Assert.False((await rates.TryAcquireAsync("acme:rpm", 1, 10, TimeSpan.FromMinutes(1))).Allowed);
        Assert.Null(await bytes.GetAsync("answer"));
        Assert.False(await bytes.SetAsync("answer", new byte[] { 1 }, TimeSpan.FromMinutes(1)));
    }
}
