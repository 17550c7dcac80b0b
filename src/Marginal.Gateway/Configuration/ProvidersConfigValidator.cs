namespace Marginal.Gateway.Configuration;

/// <summary>The <c>providers:</c> section: kinds, URLs, keys, timeouts, and the local (owned) backend with its pool.</summary>
internal sealed class ProvidersConfigValidator : IConfigValidator
{
    public void Validate(MarginalConfig config, string file)
    {
        foreach (var (name, provider) in config.Providers)
        {
            var at = $"{file}: providers.{name}";
            if (provider is null)
            {
                throw new ConfigException($"{at}: is empty; needs at least 'kind' ({string.Join(" or ", ConfigLoader.ProviderKinds)})");
            }
            if (provider.Kind is null || !ConfigLoader.ProviderKinds.Contains(provider.Kind))
            {
                throw new ConfigException($"{at}.kind: '{provider.Kind}' is not allowed (allowed: {string.Join(", ", ConfigLoader.ProviderKinds)})");
            }
            if (provider.BaseUrl is not null && !(Uri.TryCreate(provider.BaseUrl, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
            {
                throw new ConfigException($"{at}.base_url: '{provider.BaseUrl}' is not an http(s) URL");
            }
            if (provider.ApiKeyEnv is not null && provider.ApiKeyFile is not null)
            {
                throw new ConfigException($"{at}: set api_key_env or api_key_file, not both");
            }
            if (provider.Timeout is not null && !ConfigLoader.TryParseDuration(provider.Timeout, out _))
            {
                throw new ConfigException($"{at}.timeout: '{provider.Timeout}' is not a duration (allowed: a number of seconds, or e.g. 500ms, 30s, 2m)");
            }
            ValidateLocal(provider, at);
        }
    }

    private static void ValidateLocal(ProviderConfig provider, string at)
    {
        if (provider.Kind != "local")
        {
            return;
        }
        if (string.IsNullOrWhiteSpace(provider.Path))
        {
            throw new ConfigException($"{at}.path: is required for a local provider (a GGUF model file)");
        }
        foreach (var (key, value, min) in new[] { ("threads", provider.Threads, 1), ("max_batch", provider.MaxBatch, 1), ("queue_limit", provider.QueueLimit, 0), ("context", provider.Context, 16), ("json_string_limit", provider.JsonStringLimit, 0) })
        {
            if (value < min)
            {
                throw new ConfigException($"{at}.{key}: must be at least {min}, got {value}");
            }
        }
        if (provider.Backend is not null && !ConfigLoader.LocalBackends.Contains(provider.Backend))
        {
            throw new ConfigException($"{at}.backend: '{provider.Backend}' is not allowed (allowed: {string.Join(", ", ConfigLoader.LocalBackends)})");
        }
        if (provider.MaxQueueWait is { } wait && (!ConfigLoader.TryParseDuration(wait, out var bound) || bound < TimeSpan.Zero))
        {
            throw new ConfigException($"{at}.max_queue_wait: '{wait}' is not a duration (e.g. 500ms, 2s)");
        }
        if (provider.Pool is { } pool)
        {
            foreach (var (key, value) in new[] { ("purchase_usd", pool.PurchaseUsd), ("power_kw", pool.PowerKw), ("usd_per_kwh", pool.UsdPerKwh),
                ("colocation_usd_per_month", pool.ColocationUsdPerMonth), ("operations_usd_per_month", pool.OperationsUsdPerMonth), ("idle_power_kw", pool.IdlePowerKw ?? 0m) })
            {
                if (value < 0)
                {
                    throw new ConfigException($"{at}.pool.{key}: must not be negative, got {value}");
                }
            }
            if (pool.Pue < 1)
            {
                throw new ConfigException($"{at}.pool.pue: must be at least 1 (facility power ÷ IT power), got {pool.Pue}");
            }
            if (pool.PurchaseUsd > 0 && pool.LifetimeMonths < 1)
            {
                throw new ConfigException($"{at}.pool.lifetime_months: is required with purchase_usd (months to write it off over)");
            }
        }
    }
}
