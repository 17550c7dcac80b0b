using Marginal.Core.Ledger;

namespace Marginal.Economics.UnitEconomics;

/// <summary>
/// The economics report from a ledger and what the configuration says about owned pools and spill-over prices: the one
/// way the dashboard, <c>marginal report economics</c> and <c>marginal demo</c> build it. The figures are
/// <see cref="EconomicsQueries.Build"/>'s; this class picks the window and reads the ledger.
/// </summary>
public sealed class EconomicsReportBuilder(IReadOnlyList<OwnedPool> pools, IReadOnlyList<SpilloverPrice> spillover)
{
    public IReadOnlyList<OwnedPool> Pools { get; } = pools ?? throw new ArgumentNullException(nameof(pools));

    public IReadOnlyList<SpilloverPrice> Spillover { get; } = spillover ?? throw new ArgumentNullException(nameof(spillover));

    /// <summary>
    /// The report for [since, until) (defaults: the ledger's first hour, and <paramref name="now"/>), from the store's
    /// rollups when it keeps them, else from its records. Each pool's window starts when the pool started: its first
    /// record in the ledger (with rollups, the first record of the first hour the pool appears in; without, its first
    /// record in the window).
    /// </summary>
    public async Task<EconomicsReport> BuildAsync(ILedgerStore ledger, DateTimeOffset? since, DateTimeOffset? until, EconomicsGrouping by, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ledger);
        if (ledger is not IUsageRollups kept)
        {
            return Build(await ledger.ReadAsync(since, until, cancellationToken).ToListAsync(cancellationToken).ConfigureAwait(false), since, until, by, now);
        }
        // Rollups from the ledger's start, so a pool that started before the window is seen as started; the window's
        // figures only read the window's hours.
        var rollups = await kept.ReadRollupsAsync(null, until, cancellationToken).ConfigureAwait(false);
        var starts = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (var pool in Pools)
        {
            var firstHour = rollups.Where(r => r.Provider == pool.Provider && r.Requests > 0).Select(r => (DateTimeOffset?)r.Hour).Min();
            if (firstHour is { } hour)
            {
                await foreach (var record in ledger.ReadAsync(hour, hour.AddHours(1), cancellationToken).ConfigureAwait(false))
                {
                    if (record.Provider == pool.Provider && (!starts.TryGetValue(pool.Provider, out var seen) || record.Time < seen))
                    {
                        starts[pool.Provider] = record.Time;
                    }
                }
            }
        }
        var from = since ?? (rollups.Count > 0 ? rollups.Min(r => r.Hour) : now);
        return Build(rollups, from, until ?? now, by, starts);
    }

    /// <summary>The report over ledger records already read; each pool starts at its first record among them.</summary>
    public EconomicsReport Build(IReadOnlyList<UsageRecord> records, DateTimeOffset? since, DateTimeOffset? until, EconomicsGrouping by, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(records);
        var rollups = UsageRollup.From(records);
        var starts = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (var record in records)
        {
            if (record.Provider is { } provider && (!starts.TryGetValue(provider, out var seen) || record.Time < seen))
            {
                starts[provider] = record.Time;
            }
        }
        var from = since ?? (rollups.Count > 0 ? rollups.Min(r => r.Hour) : now);
        return Build(rollups, from, until ?? now, by, starts);
    }

    private EconomicsReport Build(IReadOnlyList<UsageRollup> rollups, DateTimeOffset from, DateTimeOffset to, EconomicsGrouping by, Dictionary<string, DateTimeOffset> starts)
    {
        var pools = Pools.Select(p => starts.TryGetValue(p.Provider, out var started) ? p with { Started = started } : p).ToList();
        return EconomicsQueries.Build(rollups, from, to > from ? to : from, by, pools, Spillover);
    }
}
