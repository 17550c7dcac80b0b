namespace Marginal.Gateway.Configuration;

/// <summary>The <c>cache:</c> section: durations, bounds, thresholds, the embedding model and per-route choices.</summary>
internal sealed class CacheConfigValidator : IConfigValidator
{
    public void Validate(MarginalConfig config, string file)
    {
        var cache = config.Cache;
        var at = $"{file}: cache";
        foreach (var (key, ttl) in new[] { ("exact.ttl", cache.Exact.Ttl), ("semantic.ttl", cache.Semantic.Ttl) })
        {
            if (!Durations.TryParseTtl(ttl, out _))
            {
                throw new ConfigException($"{at}.{key}: '{ttl}' is not a duration (allowed: e.g. 90s, 10m, 24h, 7d)");
            }
        }
        foreach (var (key, value) in new[] { ("exact.max_entries", (long)cache.Exact.MaxEntries), ("exact.max_bytes", cache.Exact.MaxBytes), ("semantic.max_entries", cache.Semantic.MaxEntries) })
        {
            if (value < 1)
            {
                throw new ConfigException($"{at}.{key}: must be at least 1, got {value}");
            }
        }
        CheckThreshold($"{at}.semantic.threshold", cache.Semantic.Threshold);
        var embeddings = cache.Semantic.Embeddings;
        if (cache.Semantic.MinMargin is not (>= 0 and < 1))
        {
            throw new ConfigException($"{at}.semantic.min_margin: must be a cosine difference of at least 0 and below 1, got {cache.Semantic.MinMargin}");
        }
        if (embeddings is not ("minilm" or "arctic-xs" or "ensemble") && !(config.Models.TryGetValue(embeddings, out var model) && model?.Type == "embedding"))
        {
            throw new ConfigException($"{at}.semantic.embeddings: '{embeddings}' is not allowed (allowed: minilm, arctic-xs, ensemble, or a model of type embedding under models)");
        }
        foreach (var (name, route) in cache.Routes)
        {
            if (route is null)
            {
                throw new ConfigException($"{at}.routes.{name}: is empty; set at least one of exact, semantic, threshold, cache_sampled");
            }
            if (route.Threshold is { } threshold)
            {
                CheckThreshold($"{at}.routes.{name}.threshold", threshold);
            }
            if (route.Semantic && !cache.Semantic.Enabled)
            {
                throw new ConfigException($"{at}.routes.{name}.semantic: needs cache.semantic.enabled: true");
            }
        }
    }

    private static void CheckThreshold(string at, double value)
    {
        if (!(value is > 0 and <= 1))
        {
            throw new ConfigException($"{at}: must be a cosine similarity above 0 and at most 1, got {value}");
        }
    }
}
