using System.Globalization;
using Marginal.Core.Billing;
using Marginal.Core.Budgets;
using Marginal.Core.Errors;
using Marginal.Core.Ledger;
using Marginal.Core.Pricing;
using Marginal.Core.Requests;
using Marginal.Economics.Plans;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Model;
using Marginal.Gateway.Tokens;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Admission;

/// <summary>
/// Admission, the pipeline's outermost stage (<see cref="AdmissionChatClient"/>, <see cref="AdmissionEmbeddingGenerator"/>;
/// docs/architecture.md, "Request path"): the free-tier allowance, prepaid
/// credit, USD budgets per tenant and key (UTC day and month) and requests/tokens per minute. Budgets are held by
/// reservation: a request reserves the most it can cost (its prompt, counted with the gateway's tokenizer, plus its
/// max output at the dearest price its route may serve it at) and settles to its recorded cost afterwards, so
/// concurrent requests can never together pass a budget. A request under a budget without <c>max_tokens</c> is capped
/// at <c>billing.default_max_output_tokens</c>, which keeps the reservation a true bound.
/// </summary>
public sealed class AdmissionPolicy(GatewayModelSource models, BillingModel billing, TenantAccounts accounts, ILimitCounters counters, TimeProvider time, int defaultMaxOutputTokens,
    ICreditStore? credits = null)
{
    /// <summary>How long credit grants read from the store are trusted: a top-up from the CLI counts within this time.</summary>
    public static readonly TimeSpan CreditsRefresh = TimeSpan.FromSeconds(5);

    private long _creditsReadAt;

    public BillingModel Billing => billing;

    public TenantAccounts Accounts => accounts;

    /// <summary>What a request reserved, to settle when it ends.</summary>
    public sealed class Ticket(List<CounterCharge> charges, decimal reservedUsd, long reservedTokens)
    {
        public List<CounterCharge> Charges { get; } = charges;
        public decimal ReservedUsd { get; } = reservedUsd;
        public long ReservedTokens { get; } = reservedTokens;
    }

    /// <summary>
    /// Admits the request or throws a <see cref="GatewayException"/> (402 or 429, with <c>Retry-After</c>); sets
    /// <see cref="GatewayContext.Admission"/> (before a refusal too). A tenant past its free allowance on a plan that
    /// downgrades has <paramref name="options"/>' model replaced by the free tier's, which the router then sees.
    /// Returns the reservation to settle, or null when nothing was reserved.
    /// </summary>
    public async ValueTask<Ticket?> AdmitAsync(GatewayContext context, IEnumerable<ChatMessage> messages, ChatOptions options, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        string? downgrade = null;
        var plan = billing.PlanOf(context.Tenant);
        if (plan.Free is { After: not FreeTierAfter.Bill } free && free.UsedUp(accounts.MonthOf(context.Tenant, now)))
        {
            if (free.After == FreeTierAfter.Refuse)
            {
                throw new GatewayException(GatewayErrorKind.PaymentRequired,
                    $"Tenant '{context.Tenant}' has used this month's free allowance ({Allowance(free)}) on plan '{plan.Name}'; it renews on {NextMonth(now):yyyy-MM-dd}. Upgrade the plan to continue.",
                    "free_tier_exhausted") { RetryAfter = NextMonth(now) - now };
            }
            options.ModelId = downgrade = free.Model;
            context.Tags.Add("free-tier:downgrade");
            context.Admission = new AdmissionOutcome(null, null, downgrade);
        }
        if (plan.Prepaid && credits is not null && now.ToUnixTimeMilliseconds() - Interlocked.Read(ref _creditsReadAt) > CreditsRefresh.TotalMilliseconds)
        {
            Interlocked.Exchange(ref _creditsReadAt, now.ToUnixTimeMilliseconds());
            foreach (var grant in await credits.ReadCreditsAsync(cancellationToken))
            {
                accounts.Grant(grant);
            }
        }
        if (plan.Prepaid && accounts.CreditOf(context.Tenant, now) <= 0)
        {
            throw new GatewayException(GatewayErrorKind.PaymentRequired,
                $"Tenant '{context.Tenant}' has no prepaid credit left on plan '{plan.Name}'. Top up with 'marginal credits add --tenant {context.Tenant} --usd AMOUNT'.",
                "credits_exhausted");
        }
        var key = billing.KeyAllowance(context.KeyId);
        var tenant = billing.TenantAllowance(context.Tenant);
        if (key.IsNone && tenant.IsNone)
        {
            return null;
        }

        long tokens = 0;
        decimal maxCost = 0;
        var charges = new List<CounterCharge>(8);
        if ((key.DailyUsd ?? key.MonthlyUsd ?? tenant.DailyUsd ?? tenant.MonthlyUsd) is not null || (key.Tpm ?? tenant.Tpm) is not null)
        {
            options.MaxOutputTokens ??= defaultMaxOutputTokens;
            var (price, encoding) = DearestPrice(options.ModelId);
            var prompt = TokenCounter.CountPrompt(encoding, messages);
            tokens = prompt + options.MaxOutputTokens.Value;
            maxCost = price is null ? 0m : CostCalculator.Cost(new TokenUsage(prompt, OutputTokens: options.MaxOutputTokens.Value), price);
        }
        var minuteEnd = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, now.Minute, 0, TimeSpan.Zero).AddMinutes(1);
        var dayEnd = new DateTimeOffset(now.Year, now.Month, now.Day, 0, 0, 0, TimeSpan.Zero).AddDays(1);
        var monthEnd = NextMonth(now);
        var minute = minuteEnd.ToUnixTimeSeconds() / 60;
        Add(charges, key, $"k:{context.KeyId}", minute, now, minuteEnd, dayEnd, monthEnd, tokens, maxCost);
        var keyCharges = charges.Count;
        Add(charges, tenant, $"t:{context.Tenant}", minute, now, minuteEnd, dayEnd, monthEnd, tokens, maxCost);
        var used = new decimal[charges.Count];
        var refused = await counters.TryReserveAsync(charges, used, cancellationToken);
        var reset = minuteEnd - now;
        context.Admission = new AdmissionOutcome(Window(CounterKind.Requests, charges, used, reset), Window(CounterKind.Tokens, charges, used, reset), downgrade);
        if (refused >= 0)
        {
            throw Refusal(charges[refused], used[refused], refused < keyCharges ? $"API key {context.KeyId}" : $"tenant '{context.Tenant}'", maxCost, now);
        }
        return new Ticket(charges, maxCost, tokens);
    }

    /// <summary>Replaces the reservation with what the request used: what its upstream calls cost (0 for a replayed answer) and its tokens.</summary>
    public async ValueTask SettleAsync(Ticket ticket, GatewayContext context)
    {
        // Spend is what the upstream calls cost, billed or not: a call repeated for a key whose answer was no longer kept
        // is not billed again but was paid for, and the ledger holds its cost (an adjustment the budgets are seeded
        // from at start). A replayed answer called no model: it spent nothing and used no tokens of the tenant's rate.
        var cost = context.Replayed ? 0m : context.CostUsd ?? 0m;
        var usage = context.Replayed ? null : context.Usage;
        var tokens = (usage?.InputTokenCount ?? 0) + (usage?.OutputTokenCount ?? 0);
        var deltas = new List<CounterCharge>(ticket.Charges.Count);
        foreach (var charge in ticket.Charges)
        {
            var delta = charge.Kind switch
            {
                CounterKind.DailyUsd or CounterKind.MonthlyUsd => cost - ticket.ReservedUsd,
                CounterKind.Tokens => tokens - ticket.ReservedTokens,
                _ => 0m,
            };
            if (delta != 0)
            {
                deltas.Add(charge with { Amount = delta });
            }
        }
        if (deltas.Count > 0)
        {
            await counters.AddAsync(deltas, CancellationToken.None);
        }
    }

    /// <summary>
    /// Starts the day's and month's budget counters from the ledger's recorded cost, so budgets survive a restart.
    /// <paramref name="records"/> are the ledger's records since the month's start.
    /// </summary>
    public static async Task SeedAsync(ILimitCounters counters, IAsyncEnumerable<UsageRecord> records, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        await counters.AddAsync(await SeedChargesAsync(records, now, cancellationToken), cancellationToken);

    /// <summary>The additions that start the day's and month's budget counters from <paramref name="records"/> (the ledger since the month's start).</summary>
    public static async Task<List<CounterCharge>> SeedChargesAsync(IAsyncEnumerable<UsageRecord> records, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var dayStart = new DateTimeOffset(now.Year, now.Month, now.Day, 0, 0, 0, TimeSpan.Zero);
        var monthEnd = NextMonth(now);
        var sums = new Dictionary<(CounterKind Kind, string Key), (decimal Usd, DateTimeOffset Expires)>();
        void Sum((CounterKind, string) key, decimal usd, DateTimeOffset expires) => sums[key] = (sums.GetValueOrDefault(key).Usd + usd, expires);
        await foreach (var r in records.WithCancellation(cancellationToken))
        {
            if (r.CostUsd is not { } cost || r.Kind == UsageRecordKinds.Outcome)
            {
                continue;
            }
            foreach (var scope in (ReadOnlySpan<string>)[$"k:{r.KeyId}", $"t:{r.Tenant}"])
            {
                Sum((CounterKind.MonthlyUsd, UsdKey(scope, CounterKind.MonthlyUsd, now)), cost, monthEnd);
                if (r.Time >= dayStart)
                {
                    Sum((CounterKind.DailyUsd, UsdKey(scope, CounterKind.DailyUsd, now)), cost, dayStart.AddDays(1));
                }
            }
        }
        return [.. sums.Select(s => new CounterCharge(s.Key.Kind, s.Key.Key, s.Value.Usd, decimal.MaxValue, s.Value.Expires))];
    }

    // The counters' names as stores keep them (in Redis too, so they must not change): the unit, the scope, the window.
    private static string UsdKey(string scope, CounterKind period, DateTimeOffset now) =>
        period == CounterKind.DailyUsd ? $"usd:{scope}:d:{now:yyyyMMdd}" : $"usd:{scope}:m:{now:yyyyMM}";

    private static void Add(List<CounterCharge> charges, Allowance allowance, string scope, long minute, DateTimeOffset now, DateTimeOffset minuteEnd,
        DateTimeOffset dayEnd, DateTimeOffset monthEnd, long tokens, decimal maxCost)
    {
        if (allowance.Rpm is { } rpm)
        {
            charges.Add(new CounterCharge(CounterKind.Requests, $"rpm:{scope}:{minute}", 1, rpm, minuteEnd));
        }
        if (allowance.Tpm is { } tpm)
        {
            charges.Add(new CounterCharge(CounterKind.Tokens, $"tpm:{scope}:{minute}", tokens, tpm, minuteEnd));
        }
        if (allowance.DailyUsd is { } daily)
        {
            charges.Add(new CounterCharge(CounterKind.DailyUsd, UsdKey(scope, CounterKind.DailyUsd, now), maxCost, daily, dayEnd));
        }
        if (allowance.MonthlyUsd is { } monthly)
        {
            charges.Add(new CounterCharge(CounterKind.MonthlyUsd, UsdKey(scope, CounterKind.MonthlyUsd, now), maxCost, monthly, monthEnd));
        }
    }

    private static GatewayException Refusal(CounterCharge charge, decimal used, string who, decimal maxCost, DateTimeOffset now)
    {
        var wait = charge.Expires - now;
        var c = CultureInfo.InvariantCulture;
        if (charge.IsUsd)
        {
            var period = charge.Kind == CounterKind.DailyUsd ? "daily" : "monthly";
            return new GatewayException(GatewayErrorKind.PaymentRequired, string.Create(c,
                $"The {period} budget of {who} is {charge.Limit} USD with {Math.Max(0, charge.Limit - used):0.######} USD left; this request may cost up to {maxCost:0.######} USD (its prompt plus max_tokens). Lower max_tokens or wait for the budget to renew."),
                "budget_exceeded") { RetryAfter = wait };
        }
        var what = charge.Kind == CounterKind.Requests ? "requests" : "tokens";
        var detail = charge.Kind == CounterKind.Requests ? "" : string.Create(c, $" This request needs {charge.Amount} (prompt plus max_tokens).");
        return new GatewayException(GatewayErrorKind.RateLimited, string.Create(c,
            $"Rate limit reached for {who}: {charge.Limit} {what} per minute, {Math.Max(0, charge.Limit - used)} left.{detail} Retry after {Math.Ceiling(wait.TotalSeconds)} s."),
            "rate_limit_exceeded") { RetryAfter = wait };
    }

    // For OpenAI's x-ratelimit-* headers: the limit, what is left and when the window resets. The tightest scope (the
    // smallest remainder) is the one reported.
    private static RateLimitWindow? Window(CounterKind kind, List<CounterCharge> charges, decimal[] used, TimeSpan reset)
    {
        var best = -1;
        for (var i = 0; i < charges.Count; i++)
        {
            if (charges[i].Kind == kind && (best < 0 || charges[i].Limit - used[i] < charges[best].Limit - used[best]))
            {
                best = i;
            }
        }
        return best < 0 ? null : new RateLimitWindow(charges[best].Limit, Math.Max(0, charges[best].Limit - used[best]), reset);
    }

    // The reservation must bound the cost wherever the route ends up: the dearest input-side and output prices over the
    // model's chain (fallbacks included); a name that is not a configured model (a router alias) takes the dearest of all.
    private (ModelPrice? Price, string? Encoding) DearestPrice(string? model)
    {
        var current = models.Current;
        IEnumerable<ModelDeployment> deployments = model is not null && current.Models.TryGetValue(model, out var route)
            ? route.Chain
            : current.Models.Values.Where(m => m.Type == "chat").Select(m => m.Primary);
        ModelPrice? dearest = null;
        string? encoding = null;
        foreach (var d in deployments)
        {
            if (d.Catalog is not { } catalog)
            {
                continue;
            }
            encoding ??= catalog.TokenizerEncoding;
            var p = catalog.Price;
            var input = Math.Max(p.Input, Math.Max(p.CacheWrite5m ?? 0, p.CacheWrite1h ?? 0));
            dearest = dearest is null
                ? p with { Input = input, CachedInput = input, CacheWrite5m = input, CacheWrite1h = input, BatchMultiplier = 1 }
                : dearest with { Input = Math.Max(dearest.Input, input), CachedInput = Math.Max(dearest.Input, input), Output = Math.Max(dearest.Output, p.Output) };
        }
        return (dearest, encoding);
    }

    private static DateTimeOffset NextMonth(DateTimeOffset now) => new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1);

    private static string Allowance(FreeTier free) =>
        free.Tokens is { } t ? string.Create(CultureInfo.InvariantCulture, $"{t} tokens") : string.Create(CultureInfo.InvariantCulture, $"{free.Usd} USD");
}
