using Marginal.Core.Billing;
using Marginal.Core.Ledger;
using Marginal.Economics.Invoices;
using Marginal.Economics.Plans;

namespace Marginal.Gateway.Billing;

/// <summary>
/// Each tenant's running month and prepaid credit, in this process. Prices every record the gateway writes from the
/// tenant's month-to-date (the per-request revenue; docs/economics.md, "Revenue per request") and burns it from credit.
/// Seeded from the ledger at start, so a restart continues the month. Thread-safe: one lock per tenant.
/// </summary>
public sealed class TenantAccounts(Func<BillingModel> billing)
{
    private readonly Dictionary<string, Account> _accounts = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>
    /// The revenue of <paramref name="record"/> (a usage record) under its tenant's plan, advancing the tenant's month and
    /// burning the revenue from credit. Called once per record, in the order records are written.
    /// </summary>
    public decimal Price(UsageRecord record)
    {
        var plan = billing().PlanOf(record.Tenant);
        var account = Of(record.Tenant);
        lock (account)
        {
            var month = account.MonthAt(record.Time);
            var charge = PlanPricer.Price(plan, record, month);
            account.Month = month.Add(PlanPricer.TokensOf(record), charge.ListUsd);
            var revenue = charge.RevenueUsd;
            account.Credit.Burn(record.Time, revenue);
            return revenue;
        }
    }

    /// <summary>Burns revenue booked outside a request (an outcome record) from the tenant's credit.</summary>
    public void Burn(string tenant, DateTimeOffset at, decimal usd)
    {
        var account = Of(tenant);
        lock (account)
        {
            account.Credit.Burn(at, usd);
        }
    }

    /// <summary>The tenant's month so far at <paramref name="now"/>.</summary>
    public MonthToDate MonthOf(string tenant, DateTimeOffset now)
    {
        var account = Of(tenant);
        lock (account)
        {
            return account.MonthAt(now);
        }
    }

    /// <summary>Credit left at <paramref name="now"/>.</summary>
    public decimal CreditOf(string tenant, DateTimeOffset now)
    {
        var account = Of(tenant);
        lock (account)
        {
            return account.Credit.Balance(now);
        }
    }

    /// <summary>Adds a grant (a top-up); a grant already held is ignored.</summary>
    public void Grant(CreditGrant grant)
    {
        var account = Of(grant.Tenant);
        lock (account)
        {
            account.Credit.Add(grant);
        }
    }

    /// <summary>
    /// Replays the ledger: <paramref name="grants"/> first, then <paramref name="records"/> in time order from the earliest
    /// grant (or the month's start). Records of <paramref name="now"/>'s month advance the month; every revenue burns credit.
    /// </summary>
    public async Task SeedAsync(IEnumerable<CreditGrant> grants, IAsyncEnumerable<UsageRecord> records, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        foreach (var grant in grants)
        {
            Grant(grant);
        }
        var plans = billing();
        await foreach (var r in records.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            var account = Of(r.Tenant);
            lock (account)
            {
                if (r.Kind == UsageRecordKinds.Usage && r.Time.Year == now.Year && r.Time.Month == now.Month)
                {
                    var month = account.MonthAt(r.Time);
                    account.Month = month.Add(PlanPricer.TokensOf(r), PlanPricer.ListCharge(plans.PlanOf(r.Tenant), r));
                }
                if (r.RevenueUsd is > 0 && !(r.Adjusts ?? "").StartsWith(InvoiceBuilder.MonthClosePrefix, StringComparison.Ordinal))
                {
                    account.Credit.Burn(r.Time, r.RevenueUsd.Value);
                }
            }
        }
    }

    private Account Of(string tenant)
    {
        lock (_lock)
        {
            if (!_accounts.TryGetValue(tenant, out var account))
            {
                _accounts[tenant] = account = new Account();
            }
            return account;
        }
    }

    private sealed class Account
    {
        public int MonthKey { get; set; }
        public MonthToDate Month { get; set; }
        public CreditWallet Credit { get; } = new();

        // A record in a new month starts it from zero; the month key is year × 12 + month.
        public MonthToDate MonthAt(DateTimeOffset at)
        {
            var key = at.UtcDateTime.Year * 12 + at.UtcDateTime.Month;
            if (key != MonthKey)
            {
                MonthKey = key;
                Month = default;
            }
            return Month;
        }
    }
}
