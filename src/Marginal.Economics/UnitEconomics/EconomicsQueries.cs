using Marginal.Core.Ledger;

namespace Marginal.Economics.UnitEconomics;

/// <summary>
/// Unit economics over ledger rollups: pure, no I/O; the same rollups give the same report. Every formula is in
/// docs/economics.md, "Unit economics".
/// </summary>
public static class EconomicsQueries
{
    public const string TotalGroup = "(total)";
    public const long Million = 1_000_000;

    /// <summary>What each lever's saving is measured against (docs/economics.md, "Savings by lever").</summary>
    public static string Counterfactual(string lever) => lever switch
    {
        "cache" => "the same request sent to its model uncached, at that model's price",
        "routing" => "the requested model serving the request, at its price",
        "deferral" => "the same request on the real-time tier instead of the batch tier",
        "owned" => "the same tokens on the model's rented/API fallback, at its price",
        "quantization" => "the unquantized model on the same capacity",
        "prefix" => "the prompt's cached tokens billed as uncached input",
        _ => "as recorded by the lever",
    };

    /// <summary>
    /// The report for [<paramref name="since"/>, <paramref name="until"/>) over <paramref name="rollups"/> (those outside
    /// the window's hours are skipped). <paramref name="pools"/> are the configured owned pools; <paramref name="spillover"/>
    /// the prices of the models that take tokens once the pools are full, in fallback order.
    /// </summary>
    public static EconomicsReport Build(IEnumerable<UsageRollup> rollups, DateTimeOffset since, DateTimeOffset until, EconomicsGrouping by,
        IReadOnlyList<OwnedPool> pools, IReadOnlyList<SpilloverPrice> spillover)
    {
        ArgumentNullException.ThrowIfNull(rollups);
        ArgumentNullException.ThrowIfNull(pools);
        ArgumentNullException.ThrowIfNull(spillover);
        var firstHour = UsageRollup.HourOf(since);
        var window = rollups.Where(r => r.Hour >= firstHour && r.Hour < until).ToList();

        var total = new Group(TotalGroup);
        var groups = new Dictionary<string, Group>(StringComparer.Ordinal);
        var hours = new SortedDictionary<DateTimeOffset, Group>();
        var providerSpend = new Dictionary<string, decimal>(StringComparer.Ordinal);
        var routing = new Dictionary<string, long>(StringComparer.Ordinal);
        var poolCost = pools.ToDictionary(p => p.Provider, p => p.CostPerHourUsd, StringComparer.Ordinal);
        var busyByHour = new Dictionary<DateTimeOffset, decimal>();
        foreach (var r in window)
        {
            if (poolCost.TryGetValue(r.Provider, out var perHour) && perHour > 0m)
            {
                busyByHour[r.Hour] = busyByHour.GetValueOrDefault(r.Hour) + r.CostUsd / perHour;
            }
            total.Add(r);
            var key = KeyOf(r, by);
            if (!groups.TryGetValue(key, out var g))
            {
                groups[key] = g = new Group(key);
            }
            g.Add(r);
            if (!hours.TryGetValue(r.Hour, out var h))
            {
                hours[r.Hour] = h = new Group("");
            }
            h.Add(r);
            if (r.PricedTokens > 0 || r.CostUsd != 0m)
            {
                var provider = r.Provider.Length == 0 ? "(none)" : r.Provider;
                providerSpend[provider] = providerSpend.GetValueOrDefault(provider) + r.CostUsd;
            }
            if (r.Requests > 0)
            {
                var reason = r.RouteReason.Length == 0 ? "(none)" : r.RouteReason;
                routing[reason] = routing.GetValueOrDefault(reason) + r.Requests;
            }
        }

        var lastHour = UsageRollup.HourOf(until - TimeSpan.FromTicks(1));
        var poolFigures = pools.Select(p => Utilisation(p, window, PoolHours(p, since, until), lastHour)).ToList();
        var series = hours.Select(h =>
        {
            var row = h.Value.ToRow();
            decimal? owned = null;
            if (pools.Count > 0)
            {
                // Busy hours over the pools' hours inside the window and after each pool started (the first and last
                // hours may be partial).
                var end = h.Key.AddHours(1) < until ? h.Key.AddHours(1) : until;
                var span = Math.Max(pools.Sum(p => PoolHours(p, h.Key > since ? h.Key : since, end)), 1m / 3600m);
                var busy = busyByHour.GetValueOrDefault(h.Key);
                owned = Math.Min(1m, busy / span);
            }
            return new EconomicsPoint(h.Key, row.Requests, row.InputTokens + row.OutputTokens, row.CostUsd, row.RevenueUsd, row.GrossProfitUsd, row.CacheHitRate, owned);
        }).ToList();

        var totalRow = total.ToRow();
        var rows = groups.Values.Select(g => g.ToRow())
            .OrderByDescending(r => r.CostUsd ?? 0m).ThenByDescending(r => r.Requests).ThenBy(r => r.Group, StringComparer.Ordinal).ToList();
        var savings = total.Levers.Where(l => l.Value != 0m).OrderByDescending(l => l.Value).ThenBy(l => l.Key, StringComparer.Ordinal)
            .Select(l => new LeverSaving(l.Key, l.Value, Counterfactual(l.Key))).ToList();
        var spend = providerSpend.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).ToList();
        var costBase = totalRow.FixedCostUsd + totalRow.VariableCostUsd;
        var (curve, nextMillion) = MarginalCurve(poolFigures, pools, spillover, totalRow, Million);
        return new EconomicsReport(since, until, by, totalRow, rows, series, savings, poolFigures,
            costBase == 0m ? null : totalRow.FixedCostUsd / costBase,
            spend, Hhi(spend.Select(s => s.Value)),
            routing.OrderByDescending(r => r.Value).ThenBy(r => r.Key, StringComparer.Ordinal).ToList(),
            curve, nextMillion);
    }

    /// <summary>
    /// Herfindahl–Hirschman index of spend by provider: Σ (share × 100)², 0–10,000 (10,000 = one supplier). Null without spend.
    /// </summary>
    public static decimal? Hhi(IEnumerable<decimal> spend)
    {
        var values = spend.Where(v => v > 0m).ToList();
        var sum = values.Sum();
        return sum == 0m ? null : values.Sum(v => (v / sum * 100m) * (v / sum * 100m));
    }

    private static decimal BusyHours(OwnedPool pool, IEnumerable<UsageRollup> rollups) =>
        pool.CostPerHourUsd <= 0m ? 0m : rollups.Where(r => r.Provider == pool.Provider).Sum(r => r.CostUsd) / pool.CostPerHourUsd;

    /// <summary>Hours of [since, until) after <paramref name="pool"/> started; 0 when it started at or after until.</summary>
    public static decimal PoolHours(OwnedPool pool, DateTimeOffset since, DateTimeOffset until)
    {
        ArgumentNullException.ThrowIfNull(pool);
        var start = pool.Started is { } started && started > since ? started : since;
        return until > start ? (decimal)(until - start).Ticks / TimeSpan.TicksPerHour : 0m;
    }

    private static PoolUtilisation Utilisation(OwnedPool pool, IReadOnlyList<UsageRollup> window, decimal windowHours, DateTimeOffset lastHour)
    {
        var mine = window.Where(r => r.Provider == pool.Provider).ToList();
        var loaded = mine.Sum(r => r.CostUsd);
        var busy = BusyHours(pool, mine);
        var tokens = mine.Sum(r => r.InputTokens + r.OutputTokens);
        var poolCost = pool.CostPerHourUsd * windowHours;
        return new PoolUtilisation(pool.Provider, windowHours, busy, windowHours == 0m ? 0m : Math.Min(1m, busy / windowHours), poolCost, loaded,
            Math.Max(0m, windowHours - busy) * pool.IdleCostPerHourUsd, tokens, busy == 0m ? null : tokens / busy,
            windowHours == 0m ? null : Math.Min(1m, BusyHours(pool, mine.Where(r => r.Hour == lastHour))), pool.StrandedBasis);
    }

    /// <summary>
    /// The next <paramref name="tokens"/> at the current load: first the owned pools' headroom for the next hour, (1 −
    /// utilisation of the window's last hour) × tokens per busy hour, at energy cost per token (energy/h ÷ tokens per
    /// busy hour); the rest at the spill-over models' prices blended by the window's input share, the first configured
    /// fallback taking all of it (fallbacks are tried in order), else the cheapest stand-in (<see cref="SpilloverPrice.Basis"/>).
    /// Without any price the rest is unpriced.
    /// </summary>
    public static (IReadOnlyList<MarginalSegment> Curve, decimal? Usd) MarginalCurve(IReadOnlyList<PoolUtilisation> figures, IReadOnlyList<OwnedPool> pools,
        IReadOnlyList<SpilloverPrice> spillover, EconomicsRow total, long tokens)
    {
        ArgumentNullException.ThrowIfNull(figures);
        ArgumentNullException.ThrowIfNull(pools);
        ArgumentNullException.ThrowIfNull(spillover);
        ArgumentNullException.ThrowIfNull(total);
        var segments = new List<MarginalSegment>();
        decimal? usd = 0m;
        long at = 0;
        for (var i = 0; i < figures.Count && at < tokens; i++)
        {
            var f = figures[i];
            if (f.TokensPerBusyHour is not { } rate || rate <= 0m)
            {
                continue;
            }
            var headroom = (long)((1m - (f.RecentUtilisation ?? f.Utilisation)) * rate);
            var take = Math.Min(headroom, tokens - at);
            if (take <= 0)
            {
                continue;
            }
            var perMillion = pools[i].EnergyPerHourUsd / rate * Million;
            segments.Add(new MarginalSegment(at, at + take, $"{f.Provider} headroom (energy only)", perMillion));
            usd += perMillion * take / Million;
            at += take;
        }
        if (at < tokens)
        {
            var allTokens = total.InputTokens + total.OutputTokens;
            var inputShare = allTokens == 0 ? 0.5m : (decimal)total.InputTokens / allTokens;
            if (spillover.Count > 0)
            {
                decimal Blend(SpilloverPrice p) => inputShare * p.InputUsdPerMillion + (1m - inputShare) * p.OutputUsdPerMillion;
                // A configured fallback takes the spill (the first, as the gateway tries them in order); without one, the
                // cheapest stand-in at this mix, ties to the first listed.
                var s = spillover.FirstOrDefault(p => p.Basis is null) ?? spillover.MinBy(Blend)!;
                var perMillion = Blend(s);
                segments.Add(new MarginalSegment(at, tokens, s.Basis is null ? $"spill-over to {s.Model}" : $"{s.Model} at list price ({s.Basis})", perMillion));
                usd += perMillion * (tokens - at) / Million;
            }
            else
            {
                segments.Add(new MarginalSegment(at, tokens, "no spill-over price", null));
                usd = null;
            }
        }
        return (segments, usd);
    }

    private static string KeyOf(UsageRollup r, EconomicsGrouping by) => by switch
    {
        EconomicsGrouping.Tenant => r.Tenant,
        EconomicsGrouping.Model => r.ServedModel.Length == 0 ? "(not served)" : r.ServedModel,
        EconomicsGrouping.Provider => r.Provider.Length == 0 ? "(none)" : r.Provider,
        EconomicsGrouping.Capacity => r.CapacitySource.Length == 0 ? "(unknown)" : r.CapacitySource,
        _ => r.RequestedModel,
    };

    private sealed class Group(string name)
    {
        private readonly UsageRollup _sum = new(default, "", "", "", "", "", "", "");
        private decimal _fixed, _variable;
        private long _looked, _hits;

        public Dictionary<string, decimal> Levers => _sum.Levers;

        public void Add(UsageRollup r)
        {
            _sum.Add(r);
            // Variable cost is what the requests added at the margin (their marginal cost: the whole price on API and
            // rented capacity; on an owned pool the energy with headroom, the whole share when queued); fixed is the rest
            // of the loaded cost, paid whether or not the requests came. So the fixed share is 1 − marginal ÷ loaded,
            // the same figure the report's marginal cost implies (docs/economics.md, "Unit economics").
            _variable += r.MarginalCostUsd;
            _fixed += r.CostUsd - r.MarginalCostUsd;
            if (r.CacheOutcome.Length > 0)
            {
                _looked += r.Requests;
                if (r.CacheOutcome.StartsWith("hit", StringComparison.Ordinal))
                {
                    _hits += r.Requests;
                }
            }
        }

        public EconomicsRow ToRow()
        {
            var s = _sum;
            var requests = s.Requests;
            decimal? cost = s.PricedTokens > 0 || s.CostUsd != 0m ? s.CostUsd : null;
            decimal? revenue = s.RevenueRecords > 0 ? s.RevenueUsd : null;
            return new EconomicsRow(name, requests, s.Errors, s.InputTokens, s.OutputTokens, cost, cost is null ? null : s.MarginalCostUsd, revenue,
                s.UnpricedRequests, s.UnplannedRequests,
                s.PricedTokens == 0 ? null : s.CostUsd / s.PricedTokens * Million,
                revenue is { } r1 && r1 != 0m ? (r1 - (cost ?? 0m)) / r1 : null,
                revenue is { } r2 && r2 != 0m && cost is { } c ? c / r2 : null,
                _fixed, _variable,
                _looked == 0 ? null : (decimal)_hits / _looked);
        }
    }
}
