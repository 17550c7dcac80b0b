using Marginal.Core.Billing;
using Marginal.Core.Ledger;
using Marginal.Core.Tenancy;

namespace Marginal.Storage;

/// <summary>The ledger, the keys and the credit grants of one deployment, wherever they live. Thread-safe; the owner disposes it.</summary>
public interface IMarginalStore : ILedgerStore, IKeyStore, ICreditStore
{
    /// <summary>Where the store lives, for messages: a file path, or <c>postgres://host:port/database</c> (never a password).</summary>
    string Path { get; }
}
