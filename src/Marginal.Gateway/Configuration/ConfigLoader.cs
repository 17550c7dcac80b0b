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

    // One validator per section, run in this order: the first fault found is the one reported, so the order is part of
    // the behaviour (the tests assert which message a file with several faults gets).
    private static readonly IConfigValidator[] Validators =
    [
        new ServerConfigValidator(), new StorageConfigValidator(), new BillingConfigValidator(), new DeferralConfigValidator(),
        new ShapingConfigValidator(), new RedisConfigValidator(), new ProvidersConfigValidator(), new ModelsConfigValidator(),
        new RoutesConfigValidator(), new CacheConfigValidator(), new IdempotencyConfigValidator(),
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
        ResolveRouterPaths(config, path);
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
        foreach (var validator in Validators)
        {
            validator.Validate(config, fileName);
        }
        return config;
    }

    /// <summary>A relative learned-router model file is taken from the config file's folder: it travels with the config.</summary>
    private static void ResolveRouterPaths(MarginalConfig config, string configPath)
    {
        foreach (var route in config.Routes.Values)
        {
            if (route?.Learned?.Model is { } model && !Path.IsPathRooted(model))
            {
                route.Learned.Model = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(configPath))!, model);
            }
        }
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
