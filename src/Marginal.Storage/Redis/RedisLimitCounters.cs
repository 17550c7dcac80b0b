using System.Globalization;
using Marginal.Core.Budgets;
using Marginal.Core.Errors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Marginal.Storage.Redis;

/// <summary>
/// <see cref="ILimitCounters"/> shared by every node: each counter is one Redis integer, and a reservation over several
/// counters is one Lua script (check all, then add all), so concurrent reservations on many nodes can never together
/// pass a limit. A counter expires one minute after its window ends (the window is in its name, so nodes' clocks only
/// decide when memory is freed, never what a window holds).
/// <para>
/// Amounts are whole numbers in Redis: USD counters (<c>usd:…</c>) in nano-USD (10⁻⁹; a reservation rounds up, a
/// settlement to nearest), tokens and requests as they are (rounded up). Lua numbers are doubles, exact for integers
/// up to 2⁵³: a USD counter is exact up to about 9 million USD.
/// </para>
/// <para>
/// Redis unreachable: fail closed (the default) makes <see cref="TryReserveAsync"/> throw a 503
/// <see cref="GatewayException"/> (code <c>limits_unavailable</c>); fail open reserves nothing and admits. A settlement
/// or seed that cannot reach Redis is dropped (the ledger still holds the record); the outage is logged once.
/// Thread-safe.
/// </para>
/// </summary>
public sealed partial class RedisLimitCounters(IDatabase database, string prefix = "marginal", bool failOpen = false, ILogger? logger = null) : ILimitCounters
{
    private const decimal NanosPerUsd = 1_000_000_000m;

    /// <summary>How long a counter outlives its window: slack for nodes whose clocks run ahead.</summary>
    private static readonly TimeSpan ExpirySlack = TimeSpan.FromMinutes(1);

    // KEYS: the seed marker, then the counters. ARGV: n amounts, n limits, n expiry times (unix ms).
    // Returns {-2} when the marker is gone (a Redis that lost its data: nothing is counted until it is seeded again),
    // else {-1 or the 0-based index refused, values…}.
    private const string ReserveScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {-2} end
        local n = #KEYS - 1
        local result = {-1}
        for i = 1, n do
          result[i + 1] = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
        end
        for i = 1, n do
          if result[i + 1] + tonumber(ARGV[i]) > tonumber(ARGV[n + i]) then
            result[1] = i - 1
            return result
          end
        end
        for i = 1, n do
          result[i + 1] = redis.call('INCRBY', KEYS[i + 1], ARGV[i])
          redis.call('PEXPIREAT', KEYS[i + 1], ARGV[2 * n + i])
        end
        return result
        """;

    // KEYS: the seed marker, then the counters. ARGV: n amounts, n expiry times. Adds nothing to a Redis that lost
    // its data: the seed that follows reads the ledger, which already holds what a settlement would add.
    private const string AddScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
        local n = #KEYS - 1
        for i = 1, n do
          redis.call('INCRBY', KEYS[i + 1], ARGV[i])
          redis.call('PEXPIREAT', KEYS[i + 1], ARGV[n + i])
        end
        return n
        """;

    // KEYS: the marker, then the counters. ARGV: n amounts, n expiry times. Adds only when this call set the marker.
    private const string SeedScript = """
        if redis.call('SET', KEYS[1], ARGV[#ARGV], 'NX') == false then return 0 end
        local n = #KEYS - 1
        for i = 1, n do
          redis.call('INCRBY', KEYS[i + 1], ARGV[i])
          redis.call('PEXPIREAT', KEYS[i + 1], ARGV[n + i])
        end
        return 1
        """;

    private readonly RedisReachability _reachability = new(logger, "budget and rate-limit counters");
    private readonly Lock _reseedGate = new();
    private Task? _reseed;

    private ILogger Logger => _reachability.Logger ?? NullLogger.Instance;

    /// <summary>
    /// The ledger's totals a seed adds (the month's and day's recorded cost per tenant and key), read when a
    /// reservation finds the seed marker gone; null seeds nothing but the marker.
    /// </summary>
    public Func<CancellationToken, Task<IReadOnlyList<CounterCharge>>>? SeedSource { get; set; }

    /// <summary>Whether Redis answered the last call; where outages are logged.</summary>
    public RedisReachability Reachability => _reachability;

    /// <summary>True: with Redis unreachable, reservations are admitted uncounted; false: refused with 503.</summary>
    public bool FailOpen { get; } = failOpen;

    /// <summary>The key that says this Redis holds counters seeded from the ledger (see <see cref="SeedOnceAsync"/>).</summary>
    public RedisKey SeedMarker => $"{prefix}:limit-seeded";

    public async ValueTask<int> TryReserveAsync(IReadOnlyList<CounterCharge> charges, decimal[] used, CancellationToken cancellationToken = default)
    {
        var n = charges.Count;
        var keys = new RedisKey[n + 1];
        var args = new RedisValue[3 * n];
        keys[0] = SeedMarker;
        for (var i = 0; i < n; i++)
        {
            keys[i + 1] = Key(charges[i].Key);
            args[i] = Whole(charges[i].IsUsd, charges[i].Amount, MidpointRounding.ToPositiveInfinity);
            args[n + i] = Limit(charges[i]);
            args[2 * n + i] = ExpiresAt(charges[i]);
        }
        RedisResult[] result;
        try
        {
            result = (RedisResult[])(await database.ScriptEvaluateAsync(ReserveScript, keys, args).ConfigureAwait(false))!;
            if ((long)result[0] == -2)
            {
                await ReseedOnceAsync().ConfigureAwait(false);
                result = (RedisResult[])(await database.ScriptEvaluateAsync(ReserveScript, keys, args).ConfigureAwait(false))!;
            }
            _reachability.Succeeded();
        }
        catch (Exception error) when (RedisReachability.IsUnavailable(error))
        {
            _reachability.Failed(error);
            if (!FailOpen)
            {
                throw new GatewayException(GatewayErrorKind.UpstreamUnavailable,
                    "Budgets and rate limits cannot be checked right now (their shared store, Redis, is unreachable), so requests under a budget or limit are refused. Retry shortly.",
                    "limits_unavailable");
            }
            Array.Clear(used);
            return -1;
        }
        for (var i = 0; i < n; i++)
        {
            used[i] = FromWhole(charges[i].IsUsd, (long)result[i + 1]);
        }
        return (int)(long)result[0];
    }

    public async ValueTask AddAsync(IReadOnlyList<CounterCharge> charges, CancellationToken cancellationToken = default)
    {
        if (charges.Count == 0)
        {
            return;
        }
        var (keys, args) = Additions(charges, extra: null);
        keys[0] = SeedMarker;
        try
        {
            await database.ScriptEvaluateAsync(AddScript, keys, args).ConfigureAwait(false);
            _reachability.Succeeded();
        }
        catch (Exception error) when (RedisReachability.IsUnavailable(error))
        {
            _reachability.Failed(error);
        }
    }

    /// <summary>
    /// Adds <paramref name="charges"/> (the ledger's totals) only when no node has seeded this Redis yet, marker and
    /// sums in one script: nodes starting together seed once, and a node starting later finds the counters already
    /// held. The marker lives exactly as long as the counters (no expiry), so after Redis lost its data the next node
    /// to start seeds again. Returns true when this call seeded.
    /// </summary>
    public async Task<bool> SeedOnceAsync(IReadOnlyList<CounterCharge> charges, string seededBy)
    {
        var (keys, args) = Additions(charges, seededBy);
        keys[0] = SeedMarker;
        var seeded = (long)(await database.ScriptEvaluateAsync(SeedScript, keys, args).ConfigureAwait(false)) == 1;
        _reachability.Succeeded();
        return seeded;
    }

    /// <summary>
    /// Seeds a Redis found without its marker (restarted without persistence, flushed): once per Redis, whichever node
    /// gets there first, from the ledger as it is now. Reservations on every node are refused by the script until
    /// then, so nothing counted since the restart is in the counters when the ledger's totals go in (no double count).
    /// </summary>
    private Task ReseedOnceAsync()
    {
        // One seed at a time per node: the reservations that found the marker gone meanwhile wait for the same one.
        lock (_reseedGate)
        {
            if (_reseed is null || _reseed.IsCompleted)
            {
                _reseed = ReseedAsync();
            }
            return _reseed;
        }
    }

    private async Task ReseedAsync()
    {
        if (await database.KeyExistsAsync(SeedMarker).ConfigureAwait(false))
        {
            return;
        }
        IReadOnlyList<CounterCharge> charges;
        try
        {
            charges = SeedSource is null ? [] : await SeedSource(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception error) when (!RedisReachability.IsUnavailable(error))
        {
            LogReseedFailed(Logger, error.Message);
            throw new GatewayException(GatewayErrorKind.UpstreamUnavailable,
                "Budgets and rate limits cannot be checked right now (their shared store, Redis, lost its counters and the ledger cannot be read to restore them), so requests under a budget or limit are refused. Retry shortly.",
                "limits_unavailable") { RetryAfter = TimeSpan.FromSeconds(5) };
        }
        if (await SeedOnceAsync(charges, $"reseed:{Guid.NewGuid():N}").ConfigureAwait(false))
        {
            LogReseeded(Logger, charges.Count);
        }
    }

    public async ValueTask<decimal> ReadAsync(CounterKind kind, string key, CancellationToken cancellationToken = default)
    {
        try
        {
            var value = await database.StringGetAsync(Key(key)).ConfigureAwait(false);
            _reachability.Succeeded();
            return value.IsNull ? 0m : FromWhole(kind is CounterKind.DailyUsd or CounterKind.MonthlyUsd, (long)value);
        }
        catch (Exception error) when (RedisReachability.IsUnavailable(error))
        {
            _reachability.Failed(error);
            return 0m;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis held no budget counters (restarted without its data, or flushed): seeded them again from the ledger ({Counters} counters)")]
    private static partial void LogReseeded(ILogger logger, int counters);

    [LoggerMessage(Level = LogLevel.Error, Message = "Redis lost the budget counters and the ledger cannot be read to restore them ({Reason}); requests under a budget or limit are refused until it can")]
    private static partial void LogReseedFailed(ILogger logger, string reason);

    // Room for the marker at keys[0]; with extra, the marker's value as the last argument.
    private (RedisKey[] Keys, RedisValue[] Args) Additions(IReadOnlyList<CounterCharge> charges, string? extra)
    {
        var n = charges.Count;
        var keys = new RedisKey[n + 1];
        var args = new RedisValue[2 * n + (extra is null ? 0 : 1)];
        for (var i = 0; i < n; i++)
        {
            keys[1 + i] = Key(charges[i].Key);
            args[i] = Whole(charges[i].IsUsd, charges[i].Amount, MidpointRounding.ToEven);
            args[n + i] = ExpiresAt(charges[i]);
        }
        if (extra is not null)
        {
            args[^1] = extra;
        }
        return (keys, args);
    }

    private RedisKey Key(string counter) => $"{prefix}:limit:{counter}";

    private static long Whole(bool usd, decimal amount, MidpointRounding rounding) =>
        (long)decimal.Round(usd ? amount * NanosPerUsd : amount, 0, rounding);

    private static decimal FromWhole(bool usd, long value) => usd ? value / NanosPerUsd : value;

    // decimal.MaxValue (no limit, as the seed passes) and anything past a long becomes long.MaxValue.
    private static string Limit(CounterCharge charge)
    {
        var usd = charge.IsUsd;
        var whole = charge.Limit >= (usd ? long.MaxValue / NanosPerUsd : long.MaxValue)
            ? long.MaxValue
            : (long)decimal.Floor(usd ? charge.Limit * NanosPerUsd : charge.Limit);
        return whole.ToString(CultureInfo.InvariantCulture);
    }

    private static long ExpiresAt(CounterCharge charge) => (charge.Expires + ExpirySlack).ToUnixTimeMilliseconds();
}
