using Marginal.Core.Storage;

namespace Marginal.Gateway.Configuration;

/// <summary>The <c>storage:</c> section: the ledger file or PostgreSQL, durability, acknowledgement, the spool.</summary>
internal sealed class StorageConfigValidator : IConfigValidator
{
    public void Validate(MarginalConfig config, string file)
    {
        if (string.IsNullOrWhiteSpace(config.Storage.Path))
        {
            throw new ConfigException($"{file}: storage.path: must name a file, e.g. marginal.db");
        }
        if (!ConfigLoader.Durabilities.Contains(config.Storage.Durability))
        {
            throw new ConfigException($"{file}: storage.durability: '{config.Storage.Durability}' is not allowed (allowed: {string.Join(", ", ConfigLoader.Durabilities)})");
        }
        if (!ConfigLoader.Acknowledgements.Contains(config.Storage.Acknowledge))
        {
            throw new ConfigException($"{file}: storage.acknowledge: '{config.Storage.Acknowledge}' is not allowed (allowed: {string.Join(", ", ConfigLoader.Acknowledgements)})");
        }
        if (config.Storage.MaxUnrecorded is < 1 or > 1_000_000)
        {
            throw new ConfigException($"{file}: storage.max_unrecorded: must be between 1 and 1000000, got {config.Storage.MaxUnrecorded}");
        }
        ValidateKind(config.Storage, file);
    }

    private static void ValidateKind(StorageConfig storage, string file)
    {
        if (!ConfigLoader.StorageKinds.Contains(storage.Kind))
        {
            throw new ConfigException($"{file}: storage.kind: '{storage.Kind}' is not allowed (allowed: {string.Join(", ", ConfigLoader.StorageKinds)})");
        }
        if (storage.Kind == "postgres" && (storage.ConnectionStringEnv is null) == (storage.ConnectionStringFile is null))
        {
            throw new ConfigException($"{file}: storage: with kind postgres set connection_string_env (an environment variable) or connection_string_file, exactly one");
        }
        if (storage.Kind == "postgres" && string.IsNullOrWhiteSpace(storage.Spool))
        {
            throw new ConfigException($"{file}: storage.spool: must name a directory, e.g. marginal-spool");
        }
    }
}
