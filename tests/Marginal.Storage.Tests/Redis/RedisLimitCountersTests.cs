using Marginal.Core.Budgets;
using Marginal.Core.Errors;
using Marginal.Storage.Redis;
using Marginal.Testing.Services;
using StackExchange.Redis;

namespace Marginal.Storage.Tests.Redis;

/// <summary><see cref="RedisLimitCounters"/> against a real redis-server: two connections stand for two nodes.</summary>
public sealed class RedisLimitCountersTests : IAsyncLifetime
{
    private static readonly DateTimeOffset WindowEnd = DateTimeOffset.UtcNow.AddMinutes(5);
    private readonly string _prefix = $"t{Guid.NewGuid():N}";
    private ConnectionMultiplexer _nodeA = null!;
    private ConnectionMultiplexer _nodeB = null!;

    public async Task InitializeAsync()
    {
        var endpoint = (await RedisServer.Shared).Endpoint;
        _nodeA = await ConnectionMultiplexer.ConnectAsync(endpoint);
        _nodeB = await ConnectionMultiplexer.ConnectAsync(endpoint);
    }

    public async Task DisposeAsync()
    {
        await _nodeA.DisposeAsync();
        await _nodeB.DisposeAsync();
    }

    // As a node connects: a command while Redis is away fails at once instead of waiting in a backlog.
    private static async Task<ConnectionMultiplexer> FailFastAsync(string endpoint)
    {
        var options = ConfigurationOptions.Parse(endpoint);
        options.BacklogPolicy = BacklogPolicy.FailFast;
        return await ConnectionMultiplexer.ConnectAsync(options);
    }

    private static CounterCharge Usd(string key, decimal amount, decimal limit) => new(CounterKind.MonthlyUsd, $"usd:t:{key}:m:202611", amount, limit, WindowEnd);

    [Fact]
    public async Task TryReserveAsync_400ReservationsFromTwoNodes_NeverPassTheLimit()
    {
        var a = new RedisLimitCounters(_nodeA.GetDatabase(), _prefix);
        var b = new RedisLimitCounters(_nodeB.GetDatabase(), _prefix);

        // 400 reservations of 0.07 USD against 10 USD, together with a 300-request counter: exactly 142 fit.
        var results = await Task.WhenAll(Enumerable.Range(0, 400).Select(i => (i % 2 == 0 ? a : b).TryReserveAsync(
            [new CounterCharge(CounterKind.Requests, "rpm:t:acme:1", 1, 300, WindowEnd), Usd("acme", 0.07m, 10m)], new decimal[2]).AsTask()));

        Assert.Equal(142, results.Count(r => r == -1));
        Assert.Equal(258, results.Count(r => r == 1));
        Assert.Equal(9.94m, await a.ReadAsync(CounterKind.MonthlyUsd, "usd:t:acme:m:202611"));
        Assert.Equal(142m, await b.ReadAsync(CounterKind.Requests, "rpm:t:acme:1"));
    }

    [Fact]
    public async Task TryReserveAsync_SecondCounterFull_AddsToNeitherAndReportsItsIndex()
    {
        var counters = new RedisLimitCounters(_nodeA.GetDatabase(), _prefix);
        var used = new decimal[2];

        var refused = await counters.TryReserveAsync([new CounterCharge(CounterKind.Tokens, "tpm:t:acme:1", 500, 1000, WindowEnd), Usd("acme", 2m, 1m)], used);

        Assert.Equal(1, refused);
        Assert.Equal([0m, 0m], used);
        Assert.Equal(0m, await counters.ReadAsync(CounterKind.Tokens, "tpm:t:acme:1"));
    }

    [Fact]
    public async Task AddAsync_SettlementBelowReservation_LeavesTheActualCostToTheNanoUsd()
    {
        var counters = new RedisLimitCounters(_nodeA.GetDatabase(), _prefix);
        await counters.TryReserveAsync([Usd("acme", 0.5m, 1m)], new decimal[1]);

        await counters.AddAsync([Usd("acme", 0.000000123m - 0.5m, 1m)]);

        Assert.Equal(0.000000123m, await counters.ReadAsync(CounterKind.MonthlyUsd, "usd:t:acme:m:202611"));
    }

    [Fact]
    public async Task TryReserveAsync_Counter_ExpiresAfterItsWindow()
    {
        var counters = new RedisLimitCounters(_nodeA.GetDatabase(), _prefix);

        await counters.TryReserveAsync([new CounterCharge(CounterKind.Requests, "rpm:t:acme:2", 1, 10, WindowEnd)], new decimal[1]);

        var ttl = await _nodeA.GetDatabase().KeyTimeToLiveAsync($"{_prefix}:limit:rpm:t:acme:2");
        Assert.InRange(ttl!.Value, TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(6.1));
    }

    [Fact]
    public async Task SeedOnceAsync_ThreeNodesStarting_SeedOnce()
    {
        var nodes = new[] { _nodeA, _nodeB, _nodeA }.Select(c => new RedisLimitCounters(c.GetDatabase(), _prefix)).ToArray();

        var seeded = await Task.WhenAll(nodes.Select((n, i) => n.SeedOnceAsync([Usd("acme", 3m, decimal.MaxValue)], $"node{i}")));

        Assert.Equal(1, seeded.Count(s => s));
        Assert.Equal(3m, await nodes[0].ReadAsync(CounterKind.MonthlyUsd, "usd:t:acme:m:202611"));
    }

    [Fact]
    public async Task TryReserveAsync_RedisLostItsData_SeededAgainOnceBeforeAnythingIsCounted()
    {
        var reads = 0;
        var nodes = new[] { _nodeA, _nodeB }.Select(c => new RedisLimitCounters(c.GetDatabase(), _prefix)
        {
            SeedSource = _ =>
            {
                Interlocked.Increment(ref reads);
                return Task.FromResult<IReadOnlyList<CounterCharge>>([Usd("acme", 3m, decimal.MaxValue)]);
            },
        }).ToArray();
        await nodes[0].SeedOnceAsync([Usd("acme", 3m, decimal.MaxValue)], "start");
        await nodes[0].TryReserveAsync([Usd("acme", 1m, 10m)], new decimal[1]);
        // As a Redis restarted without persistence comes back: neither the marker nor the counter.
        await _nodeA.GetDatabase().KeyDeleteAsync([nodes[0].SeedMarker, $"{_prefix}:limit:usd:t:acme:m:202611"]);

        await nodes[0].AddAsync([Usd("acme", -0.5m, 10m)]);
        var refused = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => nodes[i % 2].TryReserveAsync([Usd("acme", 0.25m, 10m)], new decimal[1]).AsTask()));

        Assert.All(refused, r => Assert.Equal(-1, r));
        // The ledger's 3 USD once, plus the 20 reservations; the settlement sent into the empty Redis is not counted.
        Assert.Equal(8m, await nodes[1].ReadAsync(CounterKind.MonthlyUsd, "usd:t:acme:m:202611"));
        Assert.InRange(reads, 1, 2);
    }

    [Fact]
    public async Task TryReserveAsync_RedisStoppedFailClosed_Throws503NamingRedis()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var connection = await FailFastAsync(redis.Endpoint);
        var counters = new RedisLimitCounters(connection.GetDatabase(), _prefix);
        redis.Stop();

        var error = await Assert.ThrowsAsync<GatewayException>(() => counters.TryReserveAsync([Usd("acme", 1m, 10m)], new decimal[1]).AsTask());

        Assert.Equal((GatewayErrorKind.UpstreamUnavailable, "limits_unavailable"), (error.Kind, error.Code));
        Assert.Contains("Redis", error.Message, StringComparison.Ordinal);
        Assert.True(counters.Reachability.IsDown);
    }

    [Fact]
    public async Task TryReserveAsync_RedisStoppedFailOpen_AdmitsAndSettlingDoesNotThrow()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var connection = await FailFastAsync(redis.Endpoint);
        var counters = new RedisLimitCounters(connection.GetDatabase(), _prefix, failOpen: true);
        redis.Stop();

        var refused = await counters.TryReserveAsync([Usd("acme", 1m, 10m)], new decimal[1]);
        await counters.AddAsync([Usd("acme", -0.5m, 10m)]);

        Assert.Equal(-1, refused);
        Assert.True(counters.Reachability.IsDown);
    }
}
