using Marginal.Core.Errors;
using Marginal.Core.Ledger;

namespace Marginal.Gateway.Idempotency;

/// <summary>
/// What the ledger says about an <c>Idempotency-Key</c> whose answer no replay store holds: the record that holds the
/// key's id keeps the hash of its request body (<see cref="UsageRecord.RequestHash"/>), and the ledger never forgets.
/// </summary>
public static class IdempotencyLedger
{
    /// <summary>
    /// False when no record holds <paramref name="requestId"/> (or the ledger cannot be read: a cluster node spooling
    /// while PostgreSQL is down goes on, and metering records the call beside the key's record if its id turns out to be
    /// taken); true when one does for the same body (or for a body from before hashes were kept): its answer is gone, the
    /// call about to be made is a repeat. Throws 422 <c>idempotency_key_reuse</c> when the record is of another body.
    /// </summary>
    public static async Task<bool> HeldAsync(ILedgerStore? ledger, string requestId, string requestHash, CancellationToken cancellationToken)
    {
        if (ledger is null)
        {
            return false;
        }
        UsageRecord? holder;
        try
        {
            holder = await ledger.FindAsync(requestId, cancellationToken);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            return false;
        }
        if (holder is null)
        {
            return false;
        }
        if (holder.RequestHash is { } hash && hash != requestHash)
        {
            throw KeyReused();
        }
        return true;
    }

    /// <summary>422: the key belongs to another request body.</summary>
    public static GatewayException KeyReused() => new(GatewayErrorKind.Unprocessable,
        "This Idempotency-Key was already used with a different request body (model, messages or options). Send the identical request to retry it, or use a new key for a new request.",
        "idempotency_key_reuse", "Idempotency-Key");
}
