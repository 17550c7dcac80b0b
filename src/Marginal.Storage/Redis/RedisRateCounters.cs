using StackExchange.Redis;

namespace Marginal.Storage.Redis;

/// <summary>
/// Fixed-window rate counters shared by every node (requests per minute, tokens per minute): a counter's window opens
/// at its first use and lasts <c>window</c>; within it, <see cref="TryAcquireAsync"/> adds an amount only when the
/// total stays within the limit, in one atomic script. Redis unreachable: <see cref="FailOpen"/> decides, as for
/// budgets. Thread-safe.
/// </summary>
public sealed class RedisRateCounters(IDatabase database, string prefix = "marginal", bool failOpen = false)
{
    // KEYS: counter. ARGV: amount, limit, window ms. Returns {allowed, total, ms left in the window}.
    private const string AcquireScript = """
        local used = tonumber(redis.call('GET', KEYS[1]) or '0')
        local amount = tonumber(ARGV[1])
        if used + amount > tonumber(ARGV[2]) then
          return {0, used, redis.call('PTTL', KEYS[1])}
        end
        used = redis.call('INCRBY', KEYS[1], amount)
        if used == amount then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
        return {1, used, redis.call('PTTL', KEYS[1])}
        """;

    /// <summary>True: with Redis unreachable, every acquire is allowed; false: refused.</summary>
    public bool FailOpen { get; } = failOpen;

    /// <summary>
    /// Adds <paramref name="amount"/> to <paramref name="counter"/> if the window's total stays ≤ <paramref name="limit"/>.
    /// A refused acquire adds nothing and says when the window ends (the Retry-After).
    /// </summary>
    public async Task<RateDecision> TryAcquireAsync(string counter, long amount, long limit, TimeSpan window)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(amount);
        try
        {
            var result = (RedisResult[])(await database.ScriptEvaluateAsync(AcquireScript, [(RedisKey)$"{prefix}:rate:{counter}"],
                [amount, limit, (long)window.TotalMilliseconds]).ConfigureAwait(false))!;
            var left = (long)result[2];
            return new RateDecision((long)result[0] == 1, (long)result[1], TimeSpan.FromMilliseconds(Math.Max(0, left)), Unavailable: false);
        }
        catch (Exception error) when (RedisBudgets.IsUnavailable(error))
        {
            return new RateDecision(FailOpen, 0, window, Unavailable: true);
        }
    }
}

/// <summary>A rate-counter outcome: allowed, the window's total, and the time until the window resets.</summary>
public readonly record struct RateDecision(bool Allowed, long Used, TimeSpan ResetsIn, bool Unavailable);
