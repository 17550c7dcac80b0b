using System.Globalization;

namespace Marginal.Core.Ledger;

/// <summary>
/// The ledger summed per hour and per dimension (tenant, requested and served model, provider, capacity source, route
/// reason, cache outcome): what the dashboard and economics report read instead of every record. Sums are exact
/// decimals. An adjustment or outcome record is summed into its request's hour and dimensions (its amounts add to
/// the request's, <see cref="UsageRecord.Kind"/>); one whose request is unknown counts under its own.
/// </summary>
public sealed class UsageRollup
{
    public UsageRollup(DateTimeOffset hour, string tenant, string requestedModel, string servedModel, string provider, string capacitySource,
        string routeReason, string cacheOutcome)
    {
        Hour = hour;
        Tenant = tenant;
        RequestedModel = requestedModel;
        ServedModel = servedModel;
        Provider = provider;
        CapacitySource = capacitySource;
        RouteReason = routeReason;
        CacheOutcome = cacheOutcome;
    }

    /// <summary>The hour's start (UTC, whole hour).</summary>
    public DateTimeOffset Hour { get; }
    public string Tenant { get; }
    public string RequestedModel { get; }
    /// <summary>Empty when no model served the request.</summary>
    public string ServedModel { get; }
    /// <summary>Empty when no provider answered.</summary>
    public string Provider { get; }
    /// <summary><c>owned</c>, <c>rented</c>, <c>api</c>, or empty when unknown.</summary>
    public string CapacitySource { get; }
    /// <summary>Empty when the router recorded none.</summary>
    public string RouteReason { get; }
    /// <summary>Empty when the cache did not look.</summary>
    public string CacheOutcome { get; }

    /// <summary>Requests (<c>usage</c> records); adjustments and outcomes are not requests.</summary>
    public long Requests { get; set; }
    public long Errors { get; set; }
    public long InputTokens { get; set; }
    public long CachedInputTokens { get; set; }
    public long OutputTokens { get; set; }
    /// <summary>Sum of the priced records' fully loaded cost.</summary>
    public decimal CostUsd { get; set; }
    public decimal MarginalCostUsd { get; set; }
    /// <summary>Input plus output tokens of the requests that carry a cost (the denominator of cost per 1M tokens).</summary>
    public long PricedTokens { get; set; }
    /// <summary>Requests that used tokens and carry no cost (the served model has no price).</summary>
    public long UnpricedRequests { get; set; }
    /// <summary>Sum of the records' revenue where one is recorded.</summary>
    public decimal RevenueUsd { get; set; }
    /// <summary>Records (of any kind) that carry a revenue; 0 means "no plan", never zero revenue.</summary>
    public long RevenueRecords { get; set; }
    /// <summary>Requests without a revenue of their own.</summary>
    public long UnplannedRequests { get; set; }
    /// <summary>Savings per lever in <see cref="LeverSavings"/> text form, summed.</summary>
    public Dictionary<string, decimal> Levers { get; } = new(StringComparer.Ordinal);

    /// <summary>The key that identifies the rollup among others of its hour.</summary>
    public string Key => string.Join('\u001f', Tenant, RequestedModel, ServedModel, Provider, CapacitySource, RouteReason, CacheOutcome);

    /// <summary>The rollup <paramref name="record"/> belongs in; <paramref name="request"/> is the request an adjustment or outcome belongs to, when known.</summary>
    public static UsageRollup For(UsageRecord record, UsageRecord? request = null)
    {
        ArgumentNullException.ThrowIfNull(record);
        var owner = record.Kind != UsageRecordKinds.Usage && request is not null ? request : record;
        return new UsageRollup(HourOf(owner.Time), owner.Tenant, owner.RequestedModel, owner.ServedModel ?? "", owner.Provider ?? "",
            owner.CapacitySource ?? "", owner.RouteReason ?? "", owner.CacheOutcome ?? "");
    }

    /// <summary>The start of the UTC hour <paramref name="time"/> falls in.</summary>
    public static DateTimeOffset HourOf(DateTimeOffset time)
    {
        var utc = time.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - utc.Ticks % TimeSpan.TicksPerHour, TimeSpan.Zero);
    }

    /// <summary>Adds one record's amounts.</summary>
    public void Add(UsageRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var isRequest = record.Kind == UsageRecordKinds.Usage;
        if (isRequest)
        {
            Requests++;
            if (record.Status != "ok")
            {
                Errors++;
            }
            if (record.RevenueUsd is null)
            {
                UnplannedRequests++;
            }
        }
        InputTokens += record.InputTokens;
        CachedInputTokens += record.CachedInputTokens;
        OutputTokens += record.OutputTokens;
        if (record.CostUsd is { } cost)
        {
            CostUsd += cost;
            PricedTokens += record.InputTokens + record.OutputTokens;
        }
        else if (isRequest && record.InputTokens + record.OutputTokens > 0)
        {
            UnpricedRequests++;
        }
        MarginalCostUsd += record.MarginalCostUsd ?? 0m;
        if (record.RevenueUsd is { } revenue)
        {
            RevenueUsd += revenue;
            RevenueRecords++;
        }
        foreach (var (lever, usd) in LeverSavings.Parse(record.Levers))
        {
            Levers[lever] = Levers.GetValueOrDefault(lever) + usd;
        }
    }

    /// <summary>Adds another rollup's sums (same or coarser grouping).</summary>
    public void Add(UsageRollup other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Requests += other.Requests;
        Errors += other.Errors;
        InputTokens += other.InputTokens;
        CachedInputTokens += other.CachedInputTokens;
        OutputTokens += other.OutputTokens;
        CostUsd += other.CostUsd;
        MarginalCostUsd += other.MarginalCostUsd;
        PricedTokens += other.PricedTokens;
        UnpricedRequests += other.UnpricedRequests;
        RevenueUsd += other.RevenueUsd;
        RevenueRecords += other.RevenueRecords;
        UnplannedRequests += other.UnplannedRequests;
        foreach (var (lever, usd) in other.Levers)
        {
            Levers[lever] = Levers.GetValueOrDefault(lever) + usd;
        }
    }

    /// <summary>The lever sums as <see cref="UsageRecord.Levers"/> text, levers in name order.</summary>
    public string LeversText => LeverSavings.Format(Levers.OrderBy(l => l.Key, StringComparer.Ordinal));

    /// <summary>Sets the lever sums from <see cref="LeversText"/>.</summary>
    public void SetLevers(string text)
    {
        Levers.Clear();
        foreach (var (lever, usd) in LeverSavings.Parse(text))
        {
            Levers[lever] = Levers.GetValueOrDefault(lever) + usd;
        }
    }

    /// <summary>
    /// Rolls <paramref name="records"/> up, matching adjustments and outcomes to requests among them. Hour first,
    /// then key, so the result is the same for the same records.
    /// </summary>
    public static IReadOnlyList<UsageRollup> From(IEnumerable<UsageRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        var list = records as IReadOnlyList<UsageRecord> ?? records.ToList();
        var requests = new Dictionary<string, UsageRecord>(StringComparer.Ordinal);
        foreach (var record in list)
        {
            if (record.Kind == UsageRecordKinds.Usage)
            {
                requests[record.Id] = record;
            }
        }
        var rollups = new Dictionary<(DateTimeOffset, string), UsageRollup>();
        foreach (var record in list)
        {
            var request = record.Adjusts is { } id ? requests.GetValueOrDefault(id) : null;
            var shape = For(record, request);
            if (!rollups.TryGetValue((shape.Hour, shape.Key), out var rollup))
            {
                rollups[(shape.Hour, shape.Key)] = rollup = shape;
            }
            rollup.Add(record);
        }
        return rollups.Values.OrderBy(r => r.Hour).ThenBy(r => r.Key, StringComparer.Ordinal).ToList();
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Hour:u} {Key} {Requests} req {CostUsd} USD");
}

/// <summary>A store that keeps <see cref="UsageRollup"/>s up to date alongside its records.</summary>
public interface IUsageRollups
{
    /// <summary>
    /// The rollups of the hours that overlap [since, until) (a null bound is open), brought up to date with every record
    /// appended before the call. Hour granularity: a bound inside an hour includes that whole hour.
    /// </summary>
    Task<IReadOnlyList<UsageRollup>> ReadRollupsAsync(DateTimeOffset? since = null, DateTimeOffset? until = null, CancellationToken cancellationToken = default);
}
