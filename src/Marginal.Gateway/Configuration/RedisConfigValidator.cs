namespace Marginal.Gateway.Configuration;

/// <summary>The <c>redis:</c> section, when present: the connection string source, fail mode, key prefix, feedback window.</summary>
internal sealed class RedisConfigValidator : IConfigValidator
{
    public void Validate(MarginalConfig config, string file)
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
        if (!RedisConfig.FailModes.Contains(redis.BudgetsFail))
        {
            throw new ConfigException($"{at}.budgets_fail: '{redis.BudgetsFail}' is not allowed (allowed: {string.Join(", ", RedisConfig.FailModes)})");
        }
        if (string.IsNullOrWhiteSpace(redis.KeyPrefix) || redis.KeyPrefix.Any(c => char.IsWhiteSpace(c) || c is '{' or '}'))
        {
            throw new ConfigException($"{at}.key_prefix: '{redis.KeyPrefix}' is not allowed (letters, digits and punctuation without spaces or braces, e.g. marginal)");
        }
        if (redis.RouteFeedbackWindow != "off"
            && (!Durations.TryParseTtl(redis.RouteFeedbackWindow, out var window) || window < TimeSpan.FromMinutes(1) || window > TimeSpan.FromDays(7)))
        {
            throw new ConfigException($"{at}.route_feedback_window: '{redis.RouteFeedbackWindow}' is not allowed (a duration from 1m to 7d, e.g. 1h, or off)");
        }
    }
}
