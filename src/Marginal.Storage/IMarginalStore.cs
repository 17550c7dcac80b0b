using Marginal.Core.Ledger;
using Marginal.Core.Tenancy;

namespace Marginal.Storage;

/// <summary>The ledger and the keys of one deployment, wherever they live. Thread-safe; the owner disposes it.</summary>
public interface IMarginalStore : ILedgerStore, IKeyStore
{
    /// <summary>Where the store lives, for messages: a file path, or <c>postgres://host:port/database</c> (never a password).</summary>
    string Path { get; }
}
