using Marginal.Core.Billing;

namespace Marginal.Economics.Tests.Plans;

public sealed class CreditWalletTests
{
    private static readonly DateTimeOffset T = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Burn_TwoGrants_DrawsTheOneExpiringFirst()
    {
        var wallet = new CreditWallet();
        wallet.Add(new CreditGrant("b", "acme", 5m, T, null));
        wallet.Add(new CreditGrant("a", "acme", 10m, T, T.AddDays(10)));

        var covered = wallet.Burn(T.AddDays(1), 12m);

        Assert.Equal(12m, covered);
        Assert.Equal(3m, wallet.Balance(T.AddDays(11)));
    }

    [Fact]
    public void Balance_AfterExpiry_LosesWhatTheGrantStillHeld()
    {
        var wallet = new CreditWallet();
        wallet.Add(new CreditGrant("a", "acme", 10m, T, T.AddDays(5)));
        wallet.Burn(T.AddDays(1), 4m);

        Assert.Equal(6m, wallet.Balance(T.AddDays(4)));
        Assert.Equal(0m, wallet.Balance(T.AddDays(6)));
    }

    [Fact]
    public void Burn_MoreThanTheBalance_CoversOnlyTheBalance()
    {
        var wallet = new CreditWallet();
        wallet.Add(new CreditGrant("a", "acme", 1m, T, null));

        Assert.Equal(1m, wallet.Burn(T.AddHours(1), 1.5m));
        Assert.Equal(0m, wallet.Balance(T.AddHours(2)));
    }
}
