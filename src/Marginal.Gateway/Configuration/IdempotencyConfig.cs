namespace Marginal.Gateway.Configuration;

/// <summary>
/// The <c>idempotency:</c> section of marginal.yaml: how a request that carries an <c>Idempotency-Key</c> is answered
/// when the client retries it (README, "Idempotent retries").
/// </summary>
public sealed class IdempotencyConfig
{
    /// <summary>Keep the finished answer of every request with an Idempotency-Key and replay it to retries (default true).</summary>
    public bool Replay { get; set; } = true;

    /// <summary>How long an answer is replayed, e.g. <c>24h</c> (the default, as Stripe keeps its keys), <c>7d</c>.</summary>
    public string Ttl { get; set; } = "24h";

    /// <summary>
    /// How long the marker of a request in progress holds its key against a retry sent to another node unless it is
    /// renewed; the answering node renews it every third of this while the request runs. A node that dies mid-request
    /// frees the key after this long at the latest; a retry refused meanwhile (409) is told the marker's time left
    /// in Retry-After.
    /// </summary>
    public string InFlightTtl { get; set; } = "30s";

    /// <summary>Most answers the in-process store holds; the least recently used goes first.</summary>
    public int MaxEntries { get; set; } = 100_000;

    /// <summary>Most bytes of answer text the in-process store holds (an estimate: UTF-16 characters × 2).</summary>
    public long MaxBytes { get; set; } = 256L * 1024 * 1024;

    internal TimeSpan TtlSpan => CacheConfigValidation.TryParseTtl(Ttl, out var ttl) ? ttl : TimeSpan.FromHours(24);

    internal TimeSpan InFlightTtlSpan => CacheConfigValidation.TryParseTtl(InFlightTtl, out var ttl) ? ttl : TimeSpan.FromSeconds(30);

    internal static void Validate(MarginalConfig config, string file)
    {
        var idempotency = config.Idempotency;
        foreach (var (key, text) in new[] { ("ttl", idempotency.Ttl), ("in_flight_ttl", idempotency.InFlightTtl) })
        {
            if (!CacheConfigValidation.TryParseTtl(text, out _))
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
