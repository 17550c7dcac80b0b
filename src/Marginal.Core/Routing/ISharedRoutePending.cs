using Marginal.Core.Ledger;

namespace Marginal.Core.Routing;

/// <summary>
/// Keeps the prompt embedding of each request the learned router sent to the weak model where every node of a
/// cluster finds it, for feedback that may land on another node or after this one restarted. Thread-safe.
/// </summary>
public interface ISharedRoutePending
{
    /// <summary>Keeps <paramref name="request"/> for the feedback window; returns at once and never throws (a lost write only narrows who can learn it).</summary>
    void Keep(RouteExample request);
}
