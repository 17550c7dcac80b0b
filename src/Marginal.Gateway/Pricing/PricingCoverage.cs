using Marginal.Core.Pricing;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pipeline;

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
/// same way <see cref="GatewayModel"/> resolves a model's entry, without starting any provider.
/// </summary>
public static class PricingCoverage
{
    public static IReadOnlyList<ModelPricing> Of(MarginalConfig config, PriceBook prices) =>
        [.. config.Models.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m =>
        {
            var provider = m.Value.Provider ?? "";
            var ownedPool = config.Providers.TryGetValue(provider, out var p) && p.Kind == "local" && p.Pool is not null;
            return new ModelPricing(m.Key, provider, m.Value.Upstream ?? m.Key, GatewayModel.PriceOf(prices, m.Key, m.Value), ownedPool);
        })];
}
