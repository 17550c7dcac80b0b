using Marginal.Core.Pricing;
using Marginal.Economics.UnitEconomics;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pricing;

namespace Marginal.Server.Dashboard;

/// <summary>What the economics report takes from the config: the owned pools' costs and the spill-over models' prices.</summary>
public static class EconomicsInputs
{
    /// <summary>
    /// Pools: every <c>kind: local</c> provider with a <c>pool:</c>. Spill-over: for each model served by such a provider,
    /// its fallbacks that run elsewhere and have a price, in fallback order (the first one takes the spill); when there
    /// are none, the stand-ins of <see cref="StandIns"/>.
    /// </summary>
    public static (IReadOnlyList<OwnedPool> Pools, IReadOnlyList<SpilloverPrice> Spillover) From(MarginalConfig config, PriceBook prices)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(prices);
        var pools = new List<OwnedPool>();
        foreach (var (name, provider) in config.Providers)
        {
            if (provider.Kind == "local" && provider.Pool is { } p)
            {
                var cost = new OwnedPoolCost(p.PurchaseUsd, p.LifetimeMonths, p.PowerKw, p.UsdPerKwh, p.Pue, p.ColocationUsdPerMonth, p.OperationsUsdPerMonth);
                pools.Add(new OwnedPool(name, cost.CostPerHour, cost.EnergyPerHour));
            }
        }
        var owned = pools.Select(p => p.Provider).ToHashSet(StringComparer.Ordinal);
        var spill = new List<SpilloverPrice>();
        foreach (var (_, model) in config.Models)
        {
            if (model.Provider is null || !owned.Contains(model.Provider))
            {
                continue;
            }
            foreach (var fallback in model.Fallbacks)
            {
                if (config.Models.TryGetValue(fallback, out var next) && next.Provider is { } np && !owned.Contains(np)
                    && PricingCoverage.PriceOf(prices, fallback, next) is { } entry && spill.All(s => s.Model != fallback))
                {
                    spill.Add(new SpilloverPrice(fallback, entry.Price.Input, entry.Price.Output, $"{entry.Price.Source} ({entry.Price.AsOf:yyyy-MM-dd})"));
                }
            }
        }
        if (spill.Count == 0 && pools.Count > 0)
        {
            spill.AddRange(StandIns(config, prices, owned));
        }
        return (pools, spill);
    }

    /// <summary>
    /// When no owned model has a priced fallback, what the tokens past the pools' headroom would cost elsewhere: the
    /// price book's API and rented models of the owned models' quality tiers (the tier their own book entries give),
    /// else, when no owned model has a book entry, the priced models configured under <c>models:</c> that run off the
    /// owned pools. The report takes the cheapest at the window's input/output mix: the least the operator would pay
    /// to buy those tokens at list price, so the figure never overstates what more owned capacity saves.
    /// </summary>
    private static IEnumerable<SpilloverPrice> StandIns(MarginalConfig config, PriceBook prices, HashSet<string> owned)
    {
        var tiers = config.Models
            .Where(m => m.Value.Provider is { } p && owned.Contains(p))
            .Select(m => PricingCoverage.PriceOf(prices, m.Key, m.Value)?.QualityTier)
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
        if (tiers.Count > 0)
        {
            return prices.Entries
                .Where(e => e.Capacity != CapacityKind.Owned && tiers.Contains(e.QualityTier))
                .OrderBy(e => e.Id, StringComparer.Ordinal)
                .Select(e => new SpilloverPrice(e.Id, e.Price.Input, e.Price.Output, $"{e.Price.Source} ({e.Price.AsOf:yyyy-MM-dd})",
                    $"cheapest {e.QualityTier}-tier API model in the price book; no priced fallback configured"));
        }
        return config.Models
            .Where(m => m.Value.Provider is { } p && !owned.Contains(p))
            .Select(m => (m.Key, Entry: PricingCoverage.PriceOf(prices, m.Key, m.Value)))
            .Where(m => m.Entry is not null)
            .OrderBy(m => m.Key, StringComparer.Ordinal)
            .Select(m => new SpilloverPrice(m.Key, m.Entry!.Price.Input, m.Entry.Price.Output, $"{m.Entry.Price.Source} ({m.Entry.Price.AsOf:yyyy-MM-dd})",
                "cheapest configured API model; no priced fallback configured"));
    }
}
