namespace Marginal.Core.Storage;

// The storage: section of marginal.yaml (keys snake_case in YAML). It lives in Core, beside the other projects' shared
// types, so that Marginal.Storage opens a store from it (Opening/MarginalStores) without depending on the gateway.

/// <summary>Where the ledger and the keys live. The default is an SQLite file beside the working directory.</summary>
public sealed class StorageConfig
{
    /// <summary>The SQLite file (WAL mode); relative paths are from the working directory.</summary>
    public string Path { get; set; } = "marginal.db";

    /// <summary><c>normal</c>: a committed record survives a killed process; <c>full</c>: also a power loss (an fsync per batch).</summary>
    public string Durability { get; set; } = "normal";

    /// <summary>False: requests are priced (headers) but not recorded. Only for measuring what recording costs.</summary>
    public bool RecordUsage { get; set; } = true;

    /// <summary>
    /// <c>committed</c>: a request is answered only after its record is committed. <c>queued</c>: answered once its record
    /// is queued, while at most <see cref="MaxUnrecorded"/> answered records wait for their commit (a crash loses at most those).
    /// </summary>
    public string Acknowledge { get; set; } = "committed";

    /// <summary>With <c>acknowledge: queued</c>: the most answered requests whose records are not yet committed.</summary>
    public int MaxUnrecorded { get; set; } = 256;

    /// <summary><c>sqlite</c> (embedded, one node) or <c>postgres</c> (shared by a cluster of nodes).</summary>
    public string Kind { get; set; } = "sqlite";

    /// <summary>With <c>postgres</c>: the environment variable holding the Npgsql connection string (never inline: it carries a password).</summary>
    public string? ConnectionStringEnv { get; set; }

    /// <summary>With <c>postgres</c>: a file holding the connection string (e.g. a mounted secret), instead of an environment variable.</summary>
    public string? ConnectionStringFile { get; set; }

    /// <summary>With <c>postgres</c>: the local directory where records wait while PostgreSQL is unreachable (docs/operations.md).</summary>
    public string Spool { get; set; } = "marginal-spool";
}
