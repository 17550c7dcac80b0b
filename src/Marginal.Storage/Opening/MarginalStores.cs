using Marginal.Core.Storage;
using Marginal.Storage.Postgres;
using Marginal.Storage.Spool;
using Marginal.Storage.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Marginal.Storage.Opening;

/// <summary>
/// Opens the ledger and key store that <c>storage:</c> in marginal.yaml names: the same for the server and for the CLI
/// commands that read or change the ledger and the keys. The caller disposes the store.
/// </summary>
public static class MarginalStores
{
    /// <summary>
    /// Opens the store <paramref name="storage"/> names. A file that cannot be opened, or a PostgreSQL server that is
    /// unreachable or misnamed, is a <see cref="StoreOpenException"/> (a node does not start blind). <paramref name="loggers"/>,
    /// when given, logs the PostgreSQL spool's outages and replays.
    /// </summary>
    public static async Task<IMarginalStore> OpenAsync(StorageConfig storage, ILoggerFactory? loggers = null, CancellationToken cancellationToken = default)
    {
        if (storage.Kind == "postgres")
        {
            return await OpenPostgresAsync(storage, loggers, cancellationToken).ConfigureAwait(false);
        }
        try
        {
            return SqliteStore.Open(storage.Path, storage.Durability == "full" ? SqliteDurability.Full : SqliteDurability.Normal);
        }
        catch (Exception error) when (error is SqliteException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new StoreOpenException($"storage.path: cannot open the ledger '{storage.Path}': {error.Message}", error);
        }
    }

    /// <summary>
    /// The cluster store: PostgreSQL behind a local spool. The connection string comes from the environment or a file
    /// only.
    /// </summary>
    private static async Task<SpooledLedgerStore> OpenPostgresAsync(StorageConfig storage, ILoggerFactory? loggers, CancellationToken cancellationToken)
    {
        var connectionString = await ReadConnectionStringAsync(storage, cancellationToken).ConfigureAwait(false);
        PostgresStore postgres;
        try
        {
            postgres = await PostgresStore.OpenAsync(connectionString, cancellationToken).ConfigureAwait(false);
        }
        catch (ArgumentException error)
        {
            // Never echo the string itself: it holds the password.
            throw new StoreOpenException($"storage: the PostgreSQL connection string is not valid ({error.GetType().Name}); expected Host=…;Database=…;Username=…");
        }
        catch (Exception error) when (PostgresStore.IsUnavailable(error) || error is InvalidDataException)
        {
            throw new StoreOpenException($"storage: cannot open the PostgreSQL ledger: {error.Message}", error);
        }
        return new SpooledLedgerStore(postgres, storage.Spool, PostgresStore.IsUnavailable, TimeSpan.FromSeconds(1), logger: loggers?.CreateLogger<SpooledLedgerStore>());
    }

    private static async Task<string> ReadConnectionStringAsync(StorageConfig storage, CancellationToken cancellationToken)
    {
        if (storage.ConnectionStringEnv is { } env)
        {
            var value = Environment.GetEnvironmentVariable(env);
            return string.IsNullOrWhiteSpace(value)
                ? throw new StoreOpenException($"storage.connection_string_env: the environment variable {env} is not set; it must hold the PostgreSQL connection string (Host=…;Database=…;Username=…)")
                : value;
        }
        try
        {
            return (await File.ReadAllTextAsync(storage.ConnectionStringFile!, cancellationToken).ConfigureAwait(false)).Trim();
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new StoreOpenException($"storage.connection_string_file: cannot read '{storage.ConnectionStringFile}': {error.Message}", error);
        }
    }
}

/// <summary>
/// The store that <c>storage:</c> names cannot be opened. <see cref="Exception.Message"/> is one line naming the key and
/// what went wrong, ready to print; it never holds a connection string.
/// </summary>
public sealed class StoreOpenException : Exception
{
    public StoreOpenException()
    {
    }

    public StoreOpenException(string message)
        : base(message)
    {
    }

    public StoreOpenException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
