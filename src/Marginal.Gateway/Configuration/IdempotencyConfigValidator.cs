namespace Marginal.Gateway.Configuration;

/// <summary>The <c>idempotency:</c> section: durations and store bounds.</summary>
internal sealed class IdempotencyConfigValidator : IConfigValidator
{
    public void Validate(MarginalConfig config, string file)
    {
        var idempotency = config.Idempotency;
        foreach (var (key, text) in new[] { ("ttl", idempotency.Ttl), ("in_flight_ttl", idempotency.InFlightTtl) })
        {
            if (!Durations.TryParseTtl(text, out _))
            {
                throw new ConfigException($"{file}: idempotency.{key}: '{text}' is not a duration (allowed: e.g. 90s, 10m, 24h, 7d)");
            }
        }
        foreach (var (key, value) in new[] { ("max_entries", (long)idempotency.MaxEntries), ("max_bytes", idempotency.MaxBytes) })
        {
            if (value < 1)
            {
                throw new ConfigException($"{file}: idempotency.{key}: must be at least 1, got {value}");
            }
        }
    }
}
