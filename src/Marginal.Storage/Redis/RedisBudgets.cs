using StackExchange.Redis;

namespace Marginal.Storage.Redis;

/// <summary>
/// Budgets shared by every node, held in Redis and changed only by atomic Lua scripts. A request first reserves what
/// it may cost (<see cref="ReserveAsync"/>): the reservation is granted only when spent + reserved + amount ≤ limit,
/// so concurrent requests on many nodes can never overrun the limit together. When the request ends it settles
/// (<see cref="SettleAsync"/>): the reservation is released and the actual cost added to spent. A reservation not
/// settled within its time to live (a node crashed mid-request) expires and stops counting; expiry is applied by the
/// next script that touches the budget, timed by Redis's own clock, so nodes' clocks do not matter.
/// <para>
/// Amounts are held as whole nano-USD (10⁻⁹ USD; a reservation rounds up, a settlement rounds to nearest): Lua numbers
/// are doubles, exact for integers up to 2⁵³, so a budget is exact up to about 9 million USD. Redis unreachable:
/// <see cref="FailOpen"/> false (the default) refuses (<see cref="BudgetOutcome.Unavailable"/>, not granted), true
/// grants without counting. Thread-safe.
/// </para>
/// </summary>
public sealed class RedisBudgets(IDatabase database, string prefix = "marginal", bool failOpen = false)
{
    private const decimal NanosPerUsd = 1_000_000_000m;

    // KEYS: spent, reserved total, reservations (hash id → nanos), expiries (zset id → expiry ms)
    // ARGV: limit nanos, amount nanos, reservation id, ttl ms
    private const string ReserveScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
        for _, id in ipairs(expired) do
          local held = redis.call('HGET', KEYS[3], id)
          if held then
            redis.call('HDEL', KEYS[3], id)
            redis.call('DECRBY', KEYS[2], held)
          end
        end
        if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now) end
        local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
        local reserved = tonumber(redis.call('GET', KEYS[2]) or '0')
        if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then
          return {1, spent, reserved}
        end
        local amount = tonumber(ARGV[2])
        if spent + reserved + amount > tonumber(ARGV[1]) then
          return {0, spent, reserved}
        end
        redis.call('HSET', KEYS[3], ARGV[3], ARGV[2])
        redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), ARGV[3])
        reserved = redis.call('INCRBY', KEYS[2], ARGV[2])
        return {1, spent, reserved}
        """;

    // KEYS: spent, reserved total, reservations, expiries, settled marker. ARGV: reservation id, actual nanos, marker ttl ms
    private const string SettleScript = """
        if redis.call('SET', KEYS[5], '1', 'NX', 'PX', ARGV[3]) == false then
          return {0, tonumber(redis.call('GET', KEYS[1]) or '0')}
        end
        local held = redis.call('HGET', KEYS[3], ARGV[1])
        if held then
          redis.call('HDEL', KEYS[3], ARGV[1])
          redis.call('ZREM', KEYS[4], ARGV[1])
          redis.call('DECRBY', KEYS[2], held)
        end
        return {1, redis.call('INCRBY', KEYS[1], ARGV[2])}
        """;

    /// <summary>How long a settlement is remembered, so a retried settle is not counted twice.</summary>
    public static readonly TimeSpan SettledMemory = TimeSpan.FromDays(1);

    /// <summary>True: with Redis unreachable, reservations are granted (uncounted); false: refused.</summary>
    public bool FailOpen { get; } = failOpen;

    private RedisKey Key(string budget, string part) => $"{prefix}:budget:{{{budget}}}:{part}";

    /// <summary>
    /// Reserves <paramref name="amountUsd"/> against <paramref name="budget"/> if spent + reserved + amount ≤
    /// <paramref name="limitUsd"/>. Reserving the same <paramref name="reservationId"/> again is granted without
    /// counting twice. The reservation lapses after <paramref name="timeToLive"/> unless settled.
    /// </summary>
    public async Task<BudgetDecision> ReserveAsync(string budget, string reservationId, decimal amountUsd, decimal limitUsd, TimeSpan timeToLive)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(amountUsd);
        try
        {
            var result = (RedisResult[])(await database.ScriptEvaluateAsync(ReserveScript,
                [Key(budget, "spent"), Key(budget, "reserved"), Key(budget, "reservations"), Key(budget, "expiries")],
                [ToNanos(limitUsd, MidpointRounding.ToZero), ToNanos(amountUsd, MidpointRounding.ToPositiveInfinity), reservationId, (long)timeToLive.TotalMilliseconds]).ConfigureAwait(false))!;
            return new BudgetDecision((long)result[0] == 1 ? BudgetOutcome.Granted : BudgetOutcome.Refused, FromNanos((long)result[1]), FromNanos((long)result[2]));
        }
        catch (Exception error) when (IsUnavailable(error))
        {
            return new BudgetDecision(FailOpen ? BudgetOutcome.GrantedUnavailable : BudgetOutcome.Unavailable, 0m, 0m);
        }
    }

    /// <summary>
    /// Ends <paramref name="reservationId"/>: releases what it held (if it has not expired) and adds
    /// <paramref name="actualUsd"/> to spent. Settling the same id again changes nothing and returns false. Returns the
    /// budget's spent total after the call. Throws <see cref="RedisException"/> when Redis is unreachable (the caller
    /// retries: a retry is counted once).
    /// </summary>
    public async Task<(bool Settled, decimal SpentUsd)> SettleAsync(string budget, string reservationId, decimal actualUsd)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(actualUsd);
        var result = (RedisResult[])(await database.ScriptEvaluateAsync(SettleScript,
            [Key(budget, "spent"), Key(budget, "reserved"), Key(budget, "reservations"), Key(budget, "expiries"), Key(budget, $"settled:{reservationId}")],
            [reservationId, ToNanos(actualUsd, MidpointRounding.ToEven), (long)SettledMemory.TotalMilliseconds]).ConfigureAwait(false))!;
        return ((long)result[0] == 1, FromNanos((long)result[1]));
    }

    /// <summary>The budget's spent and live reserved totals (reserved may include reservations past their expiry until the next reserve).</summary>
    public async Task<(decimal SpentUsd, decimal ReservedUsd)> ReadAsync(string budget)
    {
        var values = await database.StringGetAsync([Key(budget, "spent"), Key(budget, "reserved")]).ConfigureAwait(false);
        return (FromNanos(values[0].IsNull ? 0 : (long)values[0]), FromNanos(values[1].IsNull ? 0 : (long)values[1]));
    }

    private static long ToNanos(decimal usd, MidpointRounding rounding) => (long)decimal.Round(usd * NanosPerUsd, 0, rounding);

    private static decimal FromNanos(long nanos) => nanos / NanosPerUsd;

    /// <summary>True when <paramref name="error"/> means Redis cannot be reached or did not answer in time.</summary>
    public static bool IsUnavailable(Exception error) => error is RedisConnectionException or RedisTimeoutException or TimeoutException;
}

/// <summary>What a reservation came to.</summary>
public enum BudgetOutcome
{
    /// <summary>Reserved: the request may go ahead.</summary>
    Granted,

    /// <summary>Not reserved: it would take spent + reserved past the limit.</summary>
    Refused,

    /// <summary>Redis unreachable and budgets fail closed: not reserved.</summary>
    Unavailable,

    /// <summary>Redis unreachable and budgets fail open: the request may go ahead, uncounted.</summary>
    GrantedUnavailable,
}

/// <summary>A reservation's outcome with the budget's totals seen by the script (zero when Redis was unreachable).</summary>
public readonly record struct BudgetDecision(BudgetOutcome Outcome, decimal SpentUsd, decimal ReservedUsd)
{
    /// <summary>True when the request may go ahead.</summary>
    public bool Allowed => Outcome is BudgetOutcome.Granted or BudgetOutcome.GrantedUnavailable;
}
