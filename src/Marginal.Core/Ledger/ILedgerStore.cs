namespace Marginal.Core.Ledger;

/// <summary>
/// Durable, append-only storage of <see cref="UsageRecord"/>s. Implementations: SQLite (embedded), PostgreSQL (cluster);
/// both pass the same conformance suite. Thread-safe; the owner disposes it after the last call has finished.
/// </summary>
public interface ILedgerStore : IAsyncDisposable
{
    /// <summary>
    /// Appends <paramref name="records"/> in one atomic, durable step: when the task completes every record is on disk
    /// (to the store's configured durability), when it faults none is. A record whose <see cref="UsageRecord.Id"/> is
    /// already stored is not stored again. Returns, for each record in order, true when it was new and false when it was
    /// a duplicate (also of an earlier record in the same batch).
    /// </summary>
    Task<IReadOnlyList<bool>> AppendAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken = default);

    /// <summary>The record with <paramref name="id"/>, or null.</summary>
    Task<UsageRecord?> FindAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Records with <see cref="UsageRecord.Time"/> in [since, until), oldest first; a null bound is open.</summary>
    IAsyncEnumerable<UsageRecord> ReadAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, CancellationToken cancellationToken = default);

    /// <summary>How many records are stored.</summary>
    Task<long> CountAsync(CancellationToken cancellationToken = default);

    /// <summary>Stores <paramref name="feedback"/> durably.</summary>
    Task AppendFeedbackAsync(Feedback feedback, CancellationToken cancellationToken = default);

    /// <summary>Feedback with <see cref="Feedback.Time"/> in [since, until), oldest first; a null bound is open.</summary>
    IAsyncEnumerable<Feedback> ReadFeedbackAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, CancellationToken cancellationToken = default);
}
