using Marginal.Core.Pricing;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pricing;
using Marginal.Gateway.Providers;
using Marginal.Gateway.Providers.Anthropic;
using Marginal.Gateway.Providers.Local;
using Marginal.Gateway.Providers.OpenAI;
using Marginal.Gateway.Routing.Aliases;

namespace Marginal.Gateway.Model;

/// <summary>
/// One deployment of a configured model: which provider serves it under which upstream id, and its price-book entry
/// (null: the model is unpriced, its requests are recorded without a cost).
/// </summary>
public sealed record ModelDeployment(string Model, string UpstreamId, UpstreamProvider Provider, CatalogEntry? Catalog);

/// <summary>A configured model and the chain the capacity layer walks: itself first, then its fallbacks in order.</summary>
public sealed record ModelRoute(string Name, string Type, IReadOnlyList<ModelDeployment> Chain)
{
    public ModelDeployment Primary => Chain[0];
}

/// <summary>
/// The runtime snapshot of a configuration: providers built, models resolved to their chains.
/// Immutable; swapped whole on reload so a request that started on one snapshot finishes on it.
/// </summary>
public sealed class GatewayModel
{
    private GatewayModel(MarginalConfig config, IReadOnlyDictionary<string, UpstreamProvider> providers, IReadOnlyDictionary<string, ModelRoute> models)
    {
        Config = config;
        Providers = providers;
        Models = models;
        Routes = RouteAlias.Build(config);
    }

    public MarginalConfig Config { get; }

    public IReadOnlyDictionary<string, UpstreamProvider> Providers { get; }

    public IReadOnlyDictionary<string, ModelRoute> Models { get; }

    /// <summary>Route aliases (<c>routes:</c>) a client may name instead of a model.</summary>
    public IReadOnlyDictionary<string, RouteAlias> Routes { get; }

    /// <summary>Builds the snapshot of an already validated config, loading the price book it names (a bad book throws <see cref="ConfigException"/>).</summary>
    public static GatewayModel Build(MarginalConfig config, TimeProvider time) =>
        Assemble(
            config,
            config.Providers.ToDictionary(p => p.Key, p => CreateProvider(p.Key, p.Value, time), StringComparer.Ordinal),
            PriceBookLoader.LoadWithOverride(config.Pricing.Book));

    /// <summary>Turns a <see cref="ProviderConfig"/> into an <see cref="UpstreamProvider"/> of its kind.</summary>
    private static UpstreamProvider CreateProvider(string name, ProviderConfig config, TimeProvider time)
    {
        if (config.Kind == "local")
        {
            return LocalProvider.Create(name, config, time);
        }
        var missingKey = ProviderKeys.MissingKeyMessage(name, config, out var apiKey);
        if (missingKey is not null)
        {
            return new UpstreamProvider(name, config.Kind!, new ProviderKeys.UnavailableChatClient(missingKey), null);
        }
        var http = ProviderHttp.Create(config, apiKey, time);
        return config.Kind switch
        {
            "anthropic" => AnthropicProvider.Create(name, config, apiKey, http),
            _ => OpenAIProvider.Create(name, config, apiKey, http, time),
        };
    }

    /// <summary>Resolves every model to its chain over the given providers and prices (tests pass doubles here).</summary>
    internal static GatewayModel Assemble(MarginalConfig config, IReadOnlyDictionary<string, UpstreamProvider> providers, PriceBook? prices = null)
    {
        prices ??= PriceBook.Empty;
        var deployments = config.Models.ToDictionary(
            m => m.Key,
            m => new ModelDeployment(m.Key, m.Value.Upstream ?? m.Key, providers[m.Value.Provider!], PricingCoverage.PriceOf(prices, m.Key, m.Value)),
            StringComparer.Ordinal);
        var models = config.Models.ToDictionary(
            m => m.Key,
            m => new ModelRoute(m.Key, m.Value.Type ?? "chat", [deployments[m.Key], .. m.Value.Fallbacks.Select(f => deployments[f])]),
            StringComparer.Ordinal);
        return new GatewayModel(config, providers, models);
    }
}

/// <summary>Holds the current <see cref="GatewayModel"/>. Readers take <see cref="Current"/> once per request; thread-safe.</summary>
public sealed class GatewayModelSource(GatewayModel initial)
{
    private volatile GatewayModel _current = initial;

    public GatewayModel Current => _current;

    /// <summary>Replaces the snapshot. In-flight requests keep the one they took; the old providers are left for the GC, never disposed under them.</summary>
    public void Swap(GatewayModel next) => _current = next;
}
