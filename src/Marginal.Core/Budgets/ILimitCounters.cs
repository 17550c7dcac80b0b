namespace Marginal.Core.Budgets;

/// <summary>What a counter counts: its unit (USD or whole requests and tokens) and, for a budget, its window.</summary>
public enum CounterKind
{
    /// <summary>Requests per minute.</summary>
    Requests,

    /// <summary>Tokens (prompt plus output) per minute.</summary>
    Tokens,

    /// <summary>USD spent in the UTC day.</summary>
    DailyUsd,

    /// <summary>USD spent in the UTC month.</summary>
    MonthlyUsd,
}

/// <summary>
/// One counter touched by a reservation: what it counts, its key (which names the window, e.g.
/// <c>usd:t:acme:d:20261128</c>; a store keeps it as its name, nothing reads the kind back from it), the amount to add
/// (USD, tokens or requests), the most it may hold, and when the window ends (the counter may be dropped then).
/// </summary>
public readonly record struct CounterCharge(CounterKind Kind, string Key, decimal Amount, decimal Limit, DateTimeOffset Expires)
{
    /// <summary>True for a budget in USD; false for a count of requests or tokens.</summary>
    public bool IsUsd => Kind is CounterKind.DailyUsd or CounterKind.MonthlyUsd;
}

/// <summary>
/// Budget and rate-limit counters shared by every request (in-process here; a cluster store plugs in behind the same
/// contract, e.g. Redis with one Lua script per call). Thread-safe; each call is atomic across all its counters, so
/// concurrent reservations can never together pass a limit.
/// </summary>
public interface ILimitCounters
{
    /// <summary>
    /// Adds every charge's amount when each counter, after adding, stays within its limit; otherwise adds nothing.
    /// Returns -1 when reserved, else the index of the first charge that would pass its limit. <paramref name="used"/>
    /// (as long as <paramref name="charges"/>) receives each counter's value after the call.
    /// </summary>
    ValueTask<int> TryReserveAsync(IReadOnlyList<CounterCharge> charges, decimal[] used, CancellationToken cancellationToken = default);

    /// <summary>Adds each amount without checking limits: settling a reservation (actual − reserved, often negative) or seeding from the ledger.</summary>
    ValueTask AddAsync(IReadOnlyList<CounterCharge> charges, CancellationToken cancellationToken = default);

    /// <summary>The value of the counter of <paramref name="kind"/> named <paramref name="key"/>; 0 when it does not exist.</summary>
    ValueTask<decimal> ReadAsync(CounterKind kind, string key, CancellationToken cancellationToken = default);
}

/// <summary>
/// <see cref="ILimitCounters"/> in this process: one lock over a dictionary, so a reservation checks and adds every
/// counter in one step. Windows past their end are dropped every 4096 calls.
/// </summary>
public sealed class InProcessLimitCounters(TimeProvider time) : ILimitCounters
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (decimal Value, DateTimeOffset Expires)> _counters = new(StringComparer.Ordinal);
    private int _calls;

    public ValueTask<int> TryReserveAsync(IReadOnlyList<CounterCharge> charges, decimal[] used, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            Prune();
            for (var i = 0; i < charges.Count; i++)
            {
                var value = Value(charges[i].Key);
                if (value + charges[i].Amount > charges[i].Limit)
                {
                    for (var j = 0; j < charges.Count; j++)
                    {
                        used[j] = Value(charges[j].Key);
                    }
                    return ValueTask.FromResult(i);
                }
            }
            for (var i = 0; i < charges.Count; i++)
            {
                used[i] = Add(charges[i]);
            }
            return ValueTask.FromResult(-1);
        }
    }

    public ValueTask AddAsync(IReadOnlyList<CounterCharge> charges, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            foreach (var charge in charges)
            {
                Add(charge);
            }
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask<decimal> ReadAsync(CounterKind kind, string key, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return ValueTask.FromResult(Value(key));
        }
    }

    private decimal Value(string key) => _counters.TryGetValue(key, out var c) ? c.Value : 0m;

    private decimal Add(CounterCharge charge)
    {
        var value = Value(charge.Key) + charge.Amount;
        _counters[charge.Key] = (value, charge.Expires);
        return value;
    }

    private void Prune()
    {
        if (++_calls % 4096 != 0)
        {
            return;
        }
        var now = time.GetUtcNow();
        foreach (var (key, counter) in _counters)
        {
            if (counter.Expires <= now)
            {
                _counters.Remove(key);
            }
        }
    }
}
