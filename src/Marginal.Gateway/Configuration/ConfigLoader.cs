using Marginal.Core.Storage;
using System.Globalization;

namespace Marginal.Gateway.Configuration;

/// <summary>
/// Reads marginal.yaml into a validated <see cref="MarginalConfig"/>. Every failure is a
/// <see cref="ConfigException"/> whose message is one line: file, key, what is allowed.
/// </summary>
public static class ConfigLoader
{
    public static readonly string[] ProviderKinds = ["openai", "anthropic", "local"];
    public static readonly string[] LocalBackends = ["cpu", "cuda"];
    public static readonly string[] ModelTypes = ["chat", "embedding"];
    public static readonly string[] AuthModes = ["keys", "none"];
    public static readonly string[] MetricsAuthModes = ["open", "admin"];
    public static readonly string[] Durabilities = ["normal", "full"];

    public static readonly string[] Acknowledgements = ["committed", "queued"];
    public static readonly string[] StorageKinds = ["sqlite", "postgres"];

    private static readonly (string? Name, Type Type)[] Sections =
    [
        ("a provider", typeof(ProviderConfig)), ("a model", typeof(ModelConfig)), ("a provider's pool", typeof(PoolConfig)),
        ("'server'", typeof(ServerConfig)), ("'storage'", typeof(StorageConfig)), ("'pricing'", typeof(PricingConfig)), ("'billing'", typeof(BillingConfig)), ("'deferral'", typeof(DeferralConfig)), ("'shaping'", typeof(ShapingConfig)),
        ("a route", typeof(RouteConfig)), ("a route's policy", typeof(RoutePolicyConfig)), ("a route's learned router", typeof(LearnedRouterConfig)),
        ("a route's cascade", typeof(CascadeConfig)), ("a cascade's verifier", typeof(VerifierConfig)),
        ("'cache'", typeof(CacheConfig)), ("'cache.exact'", typeof(ExactCacheConfig)), ("'cache.semantic'", typeof(SemanticCacheConfig)),
        ("a cache route", typeof(CacheRouteConfig)),
        ("'redis'", typeof(RedisConfig)),
        ("'idempotency'", typeof(IdempotencyConfig)),
        ("the top level", typeof(MarginalConfig)),
    ];

    /// <summary>
    /// Loads and validates the file at <paramref name="path"/>. A relative <c>pricing.book</c> is taken from the config
    /// file's folder (it travels with the config); <c>storage.path</c> stays relative to the working directory (it is data).
    /// </summary>
    public static MarginalConfig Load(string path)
    {
        var config = Parse(YamlFiles.ReadAllText(path), path);
        if (config.Pricing.Book is { } book && !Path.IsPathRooted(book))
        {
            config.Pricing.Book = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, book);
        }
        RoutesValidation.ResolvePaths(config, path);
        if (config.Billing.Plans is { } plans && !Path.IsPathRooted(plans))
        {
            config.Billing.Plans = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, plans);
        }
        return config;
    }

    /// <summary>Parses and validates YAML text; <paramref name="fileName"/> only names the source in messages.</summary>
    public static MarginalConfig Parse(string yaml, string fileName)
    {
        var config = YamlFiles.Deserialize<MarginalConfig>(yaml, fileName, Sections);
        Validate(config, fileName);
        return config;
    }

    private static void ValidateClusterStorage(StorageConfig storage, string file)
    {
        if (!StorageKinds.Contains(storage.Kind))
        {
            throw new ConfigException($"{file}: storage.kind: '{storage.Kind}' is not allowed (allowed: {string.Join(", ", StorageKinds)})");
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

    private static void Validate(MarginalConfig config, string file)
    {
        if (!Uri.TryCreate(config.Server.Urls.Split(';')[0], UriKind.Absolute, out _))
        {
            throw new ConfigException($"{file}: server.urls: '{config.Server.Urls}' is not a URL (e.g. http://127.0.0.1:8080)");
        }
        if (config.Server.Tls is { } tls)
        {
            if (string.IsNullOrWhiteSpace(tls.CertificateFile))
            {
                throw new ConfigException($"{file}: server.tls.certificate_file: must name a PEM certificate or a PKCS#12 (.pfx) file");
            }
            if (!File.Exists(tls.CertificateFile))
            {
                throw new ConfigException($"{file}: server.tls.certificate_file: '{tls.CertificateFile}' does not exist");
            }
            if (tls.KeyFile is not null && !File.Exists(tls.KeyFile))
            {
                throw new ConfigException($"{file}: server.tls.key_file: '{tls.KeyFile}' does not exist");
            }
        }
        if (config.Server.MaxRequestBodyBytes < 1024)
        {
            throw new ConfigException($"{file}: server.max_request_body_bytes: must be at least 1024, got {config.Server.MaxRequestBodyBytes}");
        }
        if (config.Server.MaxBodyBytesInFlight is { } inFlight && inFlight < config.Server.MaxRequestBodyBytes)
        {
            throw new ConfigException($"{file}: server.max_body_bytes_in_flight: must be at least server.max_request_body_bytes ({config.Server.MaxRequestBodyBytes}), got {inFlight}");
        }
        if (!AuthModes.Contains(config.Server.Auth))
        {
            throw new ConfigException($"{file}: server.auth: '{config.Server.Auth}' is not allowed (allowed: {string.Join(", ", AuthModes)})");
        }
        if (!MetricsAuthModes.Contains(config.Server.MetricsAuth))
        {
            throw new ConfigException($"{file}: server.metrics_auth: '{config.Server.MetricsAuth}' is not allowed (allowed: {string.Join(", ", MetricsAuthModes)})");
        }
        if (string.IsNullOrWhiteSpace(config.Storage.Path))
        {
            throw new ConfigException($"{file}: storage.path: must name a file, e.g. marginal.db");
        }
        if (!Durabilities.Contains(config.Storage.Durability))
        {
            throw new ConfigException($"{file}: storage.durability: '{config.Storage.Durability}' is not allowed (allowed: {string.Join(", ", Durabilities)})");
        }
        if (!Acknowledgements.Contains(config.Storage.Acknowledge))
        {
            throw new ConfigException($"{file}: storage.acknowledge: '{config.Storage.Acknowledge}' is not allowed (allowed: {string.Join(", ", Acknowledgements)})");
        }
        if (config.Storage.MaxUnrecorded is < 1 or > 1_000_000)
        {
            throw new ConfigException($"{file}: storage.max_unrecorded: must be between 1 and 1000000, got {config.Storage.MaxUnrecorded}");
        }
        ValidateClusterStorage(config.Storage, file);
        if (config.Billing.DefaultMaxOutputTokens < 1)
        {
            throw new ConfigException($"{file}: billing.default_max_output_tokens: must be at least 1, got {config.Billing.DefaultMaxOutputTokens}");
        }
        DeferralConfig.Validate(config, file);
        ShapingConfig.Validate(config, file);
        RedisConfig.Validate(config, file);
        foreach (var (name, provider) in config.Providers)
        {
            var at = $"{file}: providers.{name}";
            if (provider is null)
            {
                throw new ConfigException($"{at}: is empty; needs at least 'kind' ({string.Join(" or ", ProviderKinds)})");
            }
            if (provider.Kind is null || !ProviderKinds.Contains(provider.Kind))
            {
                throw new ConfigException($"{at}.kind: '{provider.Kind}' is not allowed (allowed: {string.Join(", ", ProviderKinds)})");
            }
            if (provider.BaseUrl is not null && !(Uri.TryCreate(provider.BaseUrl, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
            {
                throw new ConfigException($"{at}.base_url: '{provider.BaseUrl}' is not an http(s) URL");
            }
            if (provider.ApiKeyEnv is not null && provider.ApiKeyFile is not null)
            {
                throw new ConfigException($"{at}: set api_key_env or api_key_file, not both");
            }
            if (provider.Timeout is not null && !TryParseDuration(provider.Timeout, out _))
            {
                throw new ConfigException($"{at}.timeout: '{provider.Timeout}' is not a duration (allowed: a number of seconds, or e.g. 500ms, 30s, 2m)");
            }
            ValidateLocal(provider, at);
        }
        foreach (var (name, model) in config.Models)
        {
            var at = $"{file}: models.{name}";
            if (model is null)
            {
                throw new ConfigException($"{at}: is empty; needs at least 'provider'");
            }
            if (model.Provider is null || !config.Providers.TryGetValue(model.Provider, out var provider))
            {
                throw new ConfigException($"{at}.provider: '{model.Provider}' is not defined under providers (defined: {Names(config.Providers.Keys)})");
            }
            if (model.Type is not null && !ModelTypes.Contains(model.Type))
            {
                throw new ConfigException($"{at}.type: '{model.Type}' is not allowed (allowed: {string.Join(", ", ModelTypes)})");
            }
            if (model.Type == "embedding" && provider.Kind != "openai")
            {
                throw new ConfigException($"{at}.type: embedding models need an openai-kind provider; '{model.Provider}' is {provider.Kind}");
            }
            foreach (var fallback in model.Fallbacks)
            {
                if (fallback == name || !config.Models.TryGetValue(fallback, out var target))
                {
                    throw new ConfigException($"{at}.fallbacks: '{fallback}' is not another model defined under models (defined: {Names(config.Models.Keys)})");
                }
                if ((target?.Type ?? "chat") != (model.Type ?? "chat"))
                {
                    throw new ConfigException($"{at}.fallbacks: '{fallback}' is a {target?.Type ?? "chat"} model; a fallback must be of the same type");
                }
            }
        }
        RoutesValidation.Validate(config, file);
        CacheConfigValidation.Validate(config, file);
        IdempotencyConfig.Validate(config, file);
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
        if (provider.Backend is not null && !LocalBackends.Contains(provider.Backend))
        {
            throw new ConfigException($"{at}.backend: '{provider.Backend}' is not allowed (allowed: {string.Join(", ", LocalBackends)})");
        }
        if (provider.MaxQueueWait is { } wait && (!TryParseDuration(wait, out var bound) || bound < TimeSpan.Zero))
        {
            throw new ConfigException($"{at}.max_queue_wait: '{wait}' is not a duration (e.g. 500ms, 2s)");
        }
        if (provider.Pool is { } pool)
        {
            foreach (var (key, value) in new[] { ("purchase_usd", pool.PurchaseUsd), ("power_kw", pool.PowerKw), ("usd_per_kwh", pool.UsdPerKwh),
                ("colocation_usd_per_month", pool.ColocationUsdPerMonth), ("operations_usd_per_month", pool.OperationsUsdPerMonth) })
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

    private static string Names(IEnumerable<string> names)
    {
        var list = string.Join(", ", names);
        return list.Length == 0 ? "none" : list;
    }

    /// <summary>Parses <c>500ms</c>, <c>30s</c>, <c>2m</c> or a plain number of seconds.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        var s = text.Trim();
        double factor = 1;
        if (s.EndsWith("ms", StringComparison.Ordinal)) { factor = 0.001; s = s[..^2]; }
        else if (s.EndsWith('s')) { s = s[..^1]; }
        else if (s.EndsWith('m')) { factor = 60; s = s[..^1]; }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value <= 0 || value * factor > 3600)
        {
            return false;
        }
        duration = TimeSpan.FromSeconds(value * factor);
        return true;
    }
}
