namespace Marginal.Core.Billing;

/// <summary>Prepaid credit: <paramref name="Usd"/> a tenant may spend from <paramref name="Granted"/> until <paramref name="Expires"/> (null: never).</summary>
public sealed record CreditGrant(string Id, string Tenant, decimal Usd, DateTimeOffset Granted, DateTimeOffset? Expires);

/// <summary>Where credit grants are kept. Append-only; thread-safe.</summary>
public interface ICreditStore
{
    /// <summary>Stores a new grant durably.</summary>
    Task AddCreditAsync(CreditGrant grant, CancellationToken cancellationToken = default);

    /// <summary>Every grant, of every tenant, in the order granted.</summary>
    Task<IReadOnlyList<CreditGrant>> ReadCreditsAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// A tenant's credit as it burns down. Each charge is drawn from the live grants (granted at or before the charge, not
/// expired) that expire first; what a grant still holds when it expires is lost. Not thread-safe: one owner.
/// </summary>
public sealed class CreditWallet
{
    private readonly List<(CreditGrant Grant, decimal Left)> _grants = [];

    /// <summary>Adds a grant (ignored when a grant with its id is already held).</summary>
    public void Add(CreditGrant grant)
    {
        foreach (var held in _grants)
        {
            if (held.Grant.Id == grant.Id)
            {
                return;
            }
        }
        _grants.Add((grant, grant.Usd));
        // Expiring first burns first; then the oldest; the id makes the order total.
        _grants.Sort(static (a, b) =>
        {
            var byExpiry = (a.Grant.Expires ?? DateTimeOffset.MaxValue).CompareTo(b.Grant.Expires ?? DateTimeOffset.MaxValue);
            return byExpiry != 0 ? byExpiry : a.Grant.Granted != b.Grant.Granted ? a.Grant.Granted.CompareTo(b.Grant.Granted) : string.CompareOrdinal(a.Grant.Id, b.Grant.Id);
        });
    }

    /// <summary>True when the wallet holds any grant at all (a prepaid tenant without one has no credit).</summary>
    public int Count => _grants.Count;

    /// <summary>What is left to spend at <paramref name="at"/>.</summary>
    public decimal Balance(DateTimeOffset at)
    {
        decimal total = 0;
        foreach (var (grant, left) in _grants)
        {
            if (Live(grant, at))
            {
                total += left;
            }
        }
        return total;
    }

    /// <summary>Draws <paramref name="usd"/> at <paramref name="at"/>; returns what the credit covered (the rest is owed).</summary>
    public decimal Burn(DateTimeOffset at, decimal usd)
    {
        var covered = 0m;
        for (var i = 0; i < _grants.Count && usd > 0; i++)
        {
            var (grant, left) = _grants[i];
            if (left <= 0 || !Live(grant, at))
            {
                continue;
            }
            var take = Math.Min(left, usd);
            _grants[i] = (grant, left - take);
            usd -= take;
            covered += take;
        }
        return covered;
    }

    private static bool Live(CreditGrant grant, DateTimeOffset at) => grant.Granted <= at && (grant.Expires is not { } expires || at < expires);
}
