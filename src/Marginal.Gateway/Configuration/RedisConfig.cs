namespace Marginal.Gateway.Configuration;

/// <summary>
/// The <c>redis:</c> section of marginal.yaml: what a cluster of nodes shares in Redis (docs/operations.md, "Running a
/// cluster"): budget and rate-limit counters, the exact response cache and config-change notifications. Absent: each
/// node keeps them in process.
/// </summary>
public sealed class RedisConfig
{
    public static readonly string[] FailModes = ["closed", "open"];

    /// <summary>The environment variable holding the StackExchange.Redis configuration string (never inline: it may carry a password).</summary>
    public string? ConnectionStringEnv { get; set; }

    /// <summary>A file holding the configuration string (e.g. a mounted secret), instead of an environment variable.</summary>
    public string? ConnectionStringFile { get; set; }

    /// <summary>
    /// Redis unreachable: <c>closed</c> (default) refuses requests under a budget or rate limit with 503, since
    /// nothing could hold the limit; <c>open</c> admits them uncounted.
    /// </summary>
    public string BudgetsFail { get; set; } = "closed";

    /// <summary>Prefix of every key and channel, so several deployments can share one Redis.</summary>
    public string KeyPrefix { get; set; } = "marginal";

    public bool FailOpen => BudgetsFail == "open";

    /// <summary>Checks the section; every failure is one line naming the key.</summary>
    internal static void Validate(MarginalConfig config, string file)
    {
        if (config.Redis is not { } redis)
        {
            return;
        }
        var at = $"{file}: redis";
        if ((redis.ConnectionStringEnv is null) == (redis.ConnectionStringFile is null))
        {
            throw new ConfigException($"{at}: set connection_string_env (an environment variable) or connection_string_file, exactly one; the connection string is never written inline");
        }
        if (!FailModes.Contains(redis.BudgetsFail))
        {
            throw new ConfigException($"{at}.budgets_fail: '{redis.BudgetsFail}' is not allowed (allowed: {string.Join(", ", FailModes)})");
        }
        if (string.IsNullOrWhiteSpace(redis.KeyPrefix) || redis.KeyPrefix.Any(c => char.IsWhiteSpace(c) || c is '{' or '}'))
        {
            throw new ConfigException($"{at}.key_prefix: '{redis.KeyPrefix}' is not allowed (letters, digits and punctuation without spaces or braces, e.g. marginal)");
        }
    }
}
