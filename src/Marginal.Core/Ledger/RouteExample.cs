namespace Marginal.Core.Ledger;

/// <summary>
/// The prompt embedding of a request the router sent to the weak model, kept once feedback on it became a label. The
/// ledger stores no prompt text, so the embedding cannot be recomputed after a restart; only labelled requests are kept
/// (1.5 KB each), not every downgraded one. The label itself is not stored: it is derived again from the request's
/// <see cref="Feedback"/> rows.
/// </summary>
/// <param name="RequestId">The ledger id of the request.</param>
/// <param name="Alias">The route alias that decided it.</param>
/// <param name="Embedding">The prompt's normalised embedding.</param>
public sealed record RouteExample(string RequestId, string Alias, float[] Embedding);

/// <summary>Durable storage of <see cref="RouteExample"/>s beside the ledger. Thread-safe.</summary>
public interface IRouteExampleStore
{
    /// <summary>Stores <paramref name="example"/>; a second one for the same request is ignored.</summary>
    Task SaveRouteExampleAsync(RouteExample example, CancellationToken cancellationToken = default);

    /// <summary>Every stored example, oldest first.</summary>
    Task<IReadOnlyList<RouteExample>> ReadRouteExamplesAsync(CancellationToken cancellationToken = default);

    /// <summary>The stored examples of <paramref name="requestIds"/> (those that have one), in no set order.</summary>
    Task<IReadOnlyList<RouteExample>> ReadRouteExamplesAsync(IReadOnlyCollection<string> requestIds, CancellationToken cancellationToken = default);
}
