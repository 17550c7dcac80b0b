using Marginal.Core.Pricing;
using Marginal.Economics.UnitEconomics;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pipeline;

namespace Marginal.Server.Dashboard;

/// <summary>What the economics report takes from the config: the owned pools' costs and the spill-over models' prices.</summary>
public static class EconomicsInputs
{
    /// <summary>
    /// Pools: every <c>kind: local</c> provider with a <c>pool:</c>. Spill-over: for each model served by such a provider,
    /// its fallbacks that run elsewhere and have a price, in fallback order (the first one takes the spill).
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
                    && GatewayModel.PriceOf(prices, fallback, next) is { } entry && spill.All(s => s.Model != fallback))
                {
                    spill.Add(new SpilloverPrice(fallback, entry.Price.Input, entry.Price.Output, $"{entry.Price.Source} ({entry.Price.AsOf:yyyy-MM-dd})"));
                }
            }
        }
        return (pools, spill);
    }
}
