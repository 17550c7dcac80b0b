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
    /// rollups when it keeps them, else from its records.
    /// </summary>
    public async Task<EconomicsReport> BuildAsync(ILedgerStore ledger, DateTimeOffset? since, DateTimeOffset? until, EconomicsGrouping by, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ledger);
        IReadOnlyList<UsageRollup> rollups = ledger is IUsageRollups kept
            ? await kept.ReadRollupsAsync(since, until, cancellationToken).ConfigureAwait(false)
            : UsageRollup.From(await ledger.ReadAsync(since, until, cancellationToken).ToListAsync(cancellationToken).ConfigureAwait(false));
        return Build(rollups, since, until, by, now);
    }

    /// <summary>The report over ledger records already read; windows as in <see cref="BuildAsync"/>.</summary>
    public EconomicsReport Build(IEnumerable<UsageRecord> records, DateTimeOffset? since, DateTimeOffset? until, EconomicsGrouping by, DateTimeOffset now) =>
        Build(UsageRollup.From(records), since, until, by, now);

    private EconomicsReport Build(IReadOnlyList<UsageRollup> rollups, DateTimeOffset? since, DateTimeOffset? until, EconomicsGrouping by, DateTimeOffset now)
    {
        var from = since ?? (rollups.Count > 0 ? rollups.Min(r => r.Hour) : now);
        var to = until ?? now;
        return EconomicsQueries.Build(rollups, from, to > from ? to : from, by, Pools, Spillover);
    }
}
