using Marginal.Core.Pricing;

namespace Marginal.Core.Tests.Pricing;

public sealed class OwnedPoolCostTests
{
    // Chosen so each term is a round number by hand: 87,600 over 12 months is 87,600 ÷ 8,760 h = $10.00/h; 2 kW × PUE 1.5
    // × $0.10/kWh = $0.30/h; $365 + $365 a month = $730 ÷ 730 h = $1.00/h. Pool: $11.30/h.
    private static readonly OwnedPoolCost Pool = new(87_600m, 12, 2m, 0.10m, 1.5m, 365m, 365m);

    [Fact]
    public void CostPerHour_EveryTerm_SumsCapexEnergyAndFixed()
    {
        Assert.Equal(10m, Pool.CapexPerHour);
        Assert.Equal(0.30m, Pool.EnergyPerHour);
        Assert.Equal(1m, Pool.FixedPerHour);
        Assert.Equal(11.30m, Pool.CostPerHour);
    }

    [Fact]
    public void Charge_WithHeadroom_FullyLoadedFromPoolAndMarginalFromEnergy()
    {
        // 36 s of busy share = 0.01 h.
        var cost = Pool.Charge(TimeSpan.FromSeconds(36), queued: false);

        Assert.Equal(0.113m, cost.FullyLoadedUsd);
        Assert.Equal(0.003m, cost.MarginalUsd);
    }

    [Fact]
    public void Charge_Queued_MarginalIsFullyLoaded()
    {
        var cost = Pool.Charge(TimeSpan.FromSeconds(36), queued: true);

        Assert.Equal(0.113m, cost.MarginalUsd);
        Assert.Equal(cost.FullyLoadedUsd, cost.MarginalUsd);
    }

    [Fact]
    public void Charge_SharesOfOneStep_AddUpToThePoolCostOfTheStep()
    {
        // One 36 s step shared by four sequences: 9 s each; together the pool's cost of 36 s, $0.113.
        var shares = Enumerable.Range(0, 4).Select(_ => Pool.Charge(TimeSpan.FromSeconds(9), queued: false).FullyLoadedUsd).Sum();

        Assert.Equal(0.113m, shares);
    }

    [Fact]
    public void CostPerHour_NoFigures_Zero()
    {
        var empty = new OwnedPoolCost(0m, 0, 0m, 0m, 1m, 0m, 0m);

        Assert.Equal(0m, empty.CostPerHour);
        Assert.Equal(0m, empty.Charge(TimeSpan.FromHours(1), queued: false).FullyLoadedUsd);
    }

    [Fact]
    public void Charge_ShareOfANonTerminatingHourlyCost_KeepsTenDecimals()
    {
        // $25,000 over 36 months: 25,000 ÷ 26,280 h = $0.95129375951… an hour, a quotient that never ends.
        var pool = new OwnedPoolCost(25_000m, 36, 0.7m, 0.12m, 1.3m, 0m, 0m);

        var cost = pool.Charge(TimeSpan.FromMilliseconds(1234), queued: false);

        // 1.234 s = 0.000342777… h; × (0.951293759512937… + 0.1092) = 0.000363513… USD, kept to 10 places.
        Assert.Equal(Math.Round(pool.CostPerHour * 1.234m / 3600m, 10), cost.FullyLoadedUsd);
        Assert.True(cost.FullyLoadedUsd.Scale <= 10, cost.FullyLoadedUsd.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(cost.MarginalUsd.Scale <= 10, cost.MarginalUsd.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}
