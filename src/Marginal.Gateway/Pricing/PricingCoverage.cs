using Marginal.Core.Pricing;
using Marginal.Gateway.Configuration;

namespace Marginal.Gateway.Pricing;

/// <summary>How one configured model is priced: by a price-book entry, by its owned pool's hardware costs, or not at all.</summary>
public sealed record ModelPricing(string Model, string Provider, string Upstream, CatalogEntry? Entry, bool OwnedPool)
{
    /// <summary>True when its requests are recorded without a cost (and no budget bounds them).</summary>
    public bool Unpriced => Entry is null && !OwnedPool;

    /// <summary>One line for people: the entry with its prices, source and date, the pool, or <c>unpriced</c>.</summary>
    public string Describe() => Entry is { } e
        ? string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{e.Id}: input {e.Price.Input} / output {e.Price.Output} USD per 1M ({e.Price.Source}, {e.Price.AsOf:yyyy-MM-dd})")
        : OwnedPool ? "owned pool (hardware costs under providers." + Provider + ".pool)" : "unpriced";
}

/// <summary>
/// Which configured models the price book (or an owned pool) prices, worked out from the configuration alone, the
/// same way the runtime model resolves a model's entry (<see cref="PriceOf"/>), without starting any provider.
/// </summary>
public static class PricingCoverage
{
    public static IReadOnlyList<ModelPricing> Of(MarginalConfig config, PriceBook prices) =>
        [.. config.Models.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m =>
        {
            var provider = m.Value.Provider ?? "";
            var ownedPool = config.Providers.TryGetValue(provider, out var p) && p.Kind == "local" && p.Pool is not null;
            return new ModelPricing(m.Key, provider, m.Value.Upstream ?? m.Key, PriceOf(prices, m.Key, m.Value), ownedPool);
        })];

    // A model is priced by the entry it names, else the entry of its own name, else of its upstream id. A named entry
    // that is missing is a config error: a silent fallback would bill at the wrong price.
    public static CatalogEntry? PriceOf(PriceBook prices, string name, ModelConfig model)
    {
        if (model.Price is { } named)
        {
            return prices.TryGet(named, out var entry)
                ? entry
                : throw new ConfigException($"models.{name}.price: '{named}' is not in the price book (add it to the file named by pricing.book)");
        }
        return prices.TryGet(name, out var byName) ? byName
            : prices.TryGet(model.Upstream ?? name, out var byUpstream) ? byUpstream
            : prices.Entries.FirstOrDefault(e => e.UpstreamId == (model.Upstream ?? name));
    }
}
