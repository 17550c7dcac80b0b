using System.Globalization;
using System.Text.Json.Serialization;
using Marginal.Core.Ledger;

namespace Marginal.Planner.Scenarios;

/// <summary>
/// What the usage ledger observed for one workload class over the window, scaled to a month. A class is one served
/// model: the planner's demand, performance model and API prices are all per model, and the ledger records which model
/// answered each request (tenants would mix models, so they would not map onto the planner's classes).
/// </summary>
/// <param name="Name">The served model.</param>
/// <param name="InputTokens">Observed in the window; cached reads and cache writes are inside it, as in the ledger.</param>
/// <param name="InputTokensPerMonth"><c>InputTokens × DaysPerMonth / window days</c>, rounded.</param>
/// <param name="OutputTokensPerMonth"><c>OutputTokens × DaysPerMonth / window days</c>, rounded.</param>
/// <param name="CacheShare"><c>CachedInputTokens / InputTokens</c>; 0 without input.</param>
/// <param name="DailyProfile">
/// 24 shares (UTC hours 0–23, adding up to 1) of the output tokens per hour of the window that falls on that hour of
/// the day, so a window that is not whole days weighs every hour alike.
/// </param>
/// <param name="GrowthPerMonth">
/// <c>exp(b × DaysPerMonth) − 1</c>, <c>b</c> the least-squares slope of ln(output tokens of a whole day) against the
/// day; null when fewer than <see cref="LedgerDemand.MinTrendDays"/> whole days had output, or above 10 (1,000% a month).
/// </param>
/// <param name="TrendDays">Whole days of the window (24 hours from its start) with output tokens: the trend's points.</param>
public sealed record LedgerClass(
    string Name,
    long Requests,
    long InputTokens,
    long CachedInputTokens,
    long OutputTokens,
    long InputTokensPerMonth,
    long OutputTokensPerMonth,
    double CacheShare,
    IReadOnlyList<double> DailyProfile,
    double? GrowthPerMonth,
    int TrendDays)
{
    /// <summary>The UTC hour with the largest share (the earliest of equal ones).</summary>
    public int PeakHour => DailyProfile.Select((share, hour) => (share, hour)).MaxBy(p => p.share).hour;
}

/// <summary>
/// Demand and the cache lever as the ledger observed them over <c>[Since, Until)</c>: the input of
/// <c>marginal plan --from-ledger</c>. <see cref="Derive"/> is pure (records in, figures out); <see cref="ApplyTo"/>
/// lays the figures over a scenario. docs/planner.md, "Demand from the ledger", gives every formula.
/// </summary>
/// <param name="Records">Records in the window that a model served (those without a served model used no tokens).</param>
/// <param name="CacheHitRate">Σ cached input / Σ input over every class; null when no input was observed.</param>
/// <param name="Notes">Classes left out, and why.</param>
public sealed record LedgerDemand(DateTimeOffset Since, DateTimeOffset Until, long Records, IReadOnlyList<LedgerClass> Classes, double? CacheHitRate, IReadOnlyList<string> Notes)
{
    /// <summary>A mean month: 365.25 / 12 = 30.4375 days.</summary>
    public const double DaysPerMonth = 365.25 / 12;

    /// <summary>
    /// Whole days with traffic needed before growth is taken from the trend: two weeks, so that one week's pattern
    /// (quiet weekends) cannot alone read as growth or decline.
    /// </summary>
    public const int MinTrendDays = 14;

    /// <summary>Largest monthly growth a scenario allows (ScenarioLoader: growth_per_month up to 10).</summary>
    private const double MaxGrowth = 10;

    public double Days => (Until - Since).TotalDays;

    /// <summary>Per served model, the figures observed in <c>[since, until)</c>; records outside it are ignored.</summary>
    public static LedgerDemand Derive(IEnumerable<UsageRecord> records, DateTimeOffset since, DateTimeOffset until)
    {
        if (until <= since)
        {
            throw new ArgumentException($"the window ends ({until:u}) before it starts ({since:u})", nameof(until));
        }
        var days = (until - since).TotalDays;
        var wholeDays = (int)Math.Min(Math.Floor(days), int.MaxValue);
        var classes = new SortedDictionary<string, Observed>(StringComparer.Ordinal);
        long count = 0;
        foreach (var record in records)
        {
            if (record.ServedModel is not { } model || record.Time < since || record.Time >= until)
            {
                continue;
            }
            count++;
            if (!classes.TryGetValue(model, out var observed))
            {
                classes[model] = observed = new Observed(wholeDays);
            }
            observed.Add(record, since);
        }
        var coverage = HoursOfDayCovered(since, until);
        var result = new List<LedgerClass>();
        var notes = new List<string>();
        foreach (var (name, o) in classes)
        {
            if (o.Output <= 0)
            {
                notes.Add(Text($"{name}: left out: no output tokens in the window ({o.Requests:N0} requests)"));
                continue;
            }
            result.Add(new LedgerClass(name, o.Requests, o.Input, o.Cached, o.Output, PerMonth(o.Input, days), PerMonth(o.Output, days),
                o.Input > 0 ? (double)o.Cached / o.Input : 0, Profile(o.OutputByHour, coverage), Trend(o.OutputByDay, out var points), points));
        }
        var input = result.Sum(c => c.InputTokens);
        double? cacheHitRate = input > 0 ? (double)result.Sum(c => c.CachedInputTokens) / input : null;
        return new LedgerDemand(since, until, count, result, cacheHitRate, notes);
    }

    /// <summary>
    /// <paramref name="scenario"/> with its workloads replaced by one per observed class and its cache hit rate by the
    /// observed one. What the ledger cannot show (latency target, batch share, surges, and growth where the window is too
    /// short) is taken from the scenario's workload that uses the same model, else from its first workload; a served
    /// model the scenario does not describe is planned as that workload's model. The small-model share is set to 0:
    /// the observed classes already carry what was routed to each model. Throws <see cref="ScenarioException"/> when
    /// the result is not a valid scenario.
    /// </summary>
    public LedgerScenario ApplyTo(Scenario scenario)
    {
        var config = scenario.Config.Copy();
        var first = config.Workloads.First();
        var workloads = new Dictionary<string, WorkloadConfig?>(StringComparer.Ordinal);
        var planned = new List<LedgerWorkload>();
        var notes = new List<string>(Notes);
        foreach (var c in Classes)
        {
            var template = config.Workloads.FirstOrDefault(w => w.Value?.Model == c.Name, first);
            var model = template.Value!.Model == c.Name || config.Models.ContainsKey(c.Name) ? c.Name : template.Value.Model!;
            if (model != c.Name)
            {
                notes.Add($"{c.Name}: not a model of the scenario; planned as {model}");
            }
            var growth = c.GrowthPerMonth ?? template.Value.GrowthPerMonth;
            if (c.GrowthPerMonth is null)
            {
                var why = c.TrendDays < MinTrendDays
                    ? Text($"{c.TrendDays} whole days with traffic, the trend needs {MinTrendDays}")
                    : Text($"the trend is above {MaxGrowth:0%} a month");
                notes.Add(Text($"{c.Name}: growth {growth:0.0%} a month kept from workload '{template.Key}': {why}"));
            }
            workloads[c.Name] = new WorkloadConfig
            {
                Model = model,
                InputTokensPerMonth = c.InputTokensPerMonth,
                OutputTokensPerMonth = c.OutputTokensPerMonth,
                GrowthPerMonth = growth,
                DailyProfile = [.. c.DailyProfile],
                Surges = template.Value.Surges,
                LatencySloMsPerToken = template.Value.LatencySloMsPerToken,
                BatchShare = template.Value.BatchShare,
            };
            planned.Add(new LedgerWorkload(c.Name, model, template.Key, growth, c.GrowthPerMonth is not null));
        }
        config.Workloads = workloads;
        config.Levers = config.Levers.Copy();
        if (CacheHitRate is { } observed)
        {
            config.Levers.CacheHitRate = observed;
        }
        else
        {
            notes.Add(Text($"cache hit rate {config.Levers.CacheHitRate:0.0%} kept from the scenario: no input tokens observed"));
        }
        if (config.Levers.SmallModelShare > 0)
        {
            notes.Add(Text($"levers.small_model_share {config.Levers.SmallModelShare:0.0%} set to 0: the observed classes already show what each model served"));
            config.Levers.SmallModelShare = 0;
        }
        config.Name = $"{scenario.Name} (from ledger)";
        return new LedgerScenario(ScenarioLoader.Validate(config, scenario.File), this, planned, config.Levers.CacheHitRate, notes);
    }

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>Tokens in the window scaled to a mean month: tokens × DaysPerMonth / days.</summary>
    private static long PerMonth(long tokens, double days) => (long)Math.Round(tokens * DaysPerMonth / days, MidpointRounding.AwayFromZero);

    /// <summary>Hours of <c>[since, until)</c> that fall on each UTC hour of the day.</summary>
    private static double[] HoursOfDayCovered(DateTimeOffset since, DateTimeOffset until)
    {
        var covered = new double[24];
        var fullDays = Math.Floor((until - since).TotalDays);
        // Every whole day covers each hour once; walk only the remainder (under 25 steps).
        for (var h = 0; h < 24; h++)
        {
            covered[h] = fullDays;
        }
        var t = since.AddDays(fullDays).ToUniversalTime();
        while (t < until)
        {
            var nextHour = new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero).AddHours(1);
            var next = nextHour < until ? nextHour : until;
            covered[t.Hour] += (next - t).TotalHours;
            t = next;
        }
        return covered;
    }

    /// <summary>share[h] = rate[h] / Σ rate, rate[h] = output tokens in hour h / hours of the window on hour h.</summary>
    private static double[] Profile(long[] outputByHour, double[] covered)
    {
        var rate = outputByHour.Select((tokens, h) => covered[h] > 0 ? tokens / covered[h] : 0).ToArray();
        var sum = rate.Sum();
        return rate.Select(r => r / sum).ToArray();
    }

    /// <summary>
    /// Monthly growth from a log-linear least-squares fit over the whole days with output:
    /// ln y_d = a + b·d, b = Σ(d − d̄)(ln y_d − mean) / Σ(d − d̄)², growth = exp(b × DaysPerMonth) − 1.
    /// </summary>
    private static double? Trend(long[] outputByDay, out int points)
    {
        var days = Enumerable.Range(0, outputByDay.Length).Where(d => outputByDay[d] > 0).ToList();
        points = days.Count;
        if (points < MinTrendDays)
        {
            return null;
        }
        var meanDay = days.Average();
        var meanLog = days.Average(d => Math.Log(outputByDay[d]));
        var slope = days.Sum(d => (d - meanDay) * (Math.Log(outputByDay[d]) - meanLog)) / days.Sum(d => (d - meanDay) * (d - meanDay));
        var growth = Math.Exp(slope * DaysPerMonth) - 1;
        return growth <= MaxGrowth ? growth : null;
    }

    /// <summary>Running totals of one class.</summary>
    private sealed class Observed(int wholeDays)
    {
        public long Requests { get; private set; }
        public long Input { get; private set; }
        public long Cached { get; private set; }
        public long Output { get; private set; }
        public long[] OutputByHour { get; } = new long[24];
        public long[] OutputByDay { get; } = new long[wholeDays];

        public void Add(UsageRecord record, DateTimeOffset since)
        {
            Requests++;
            Input += record.InputTokens;
            Cached += record.CachedInputTokens;
            Output += record.OutputTokens;
            OutputByHour[record.Time.UtcDateTime.Hour] += record.OutputTokens;
            // Days count 24 hours from the window's start; the last, partial one is left out of the trend.
            var day = (long)Math.Floor((record.Time - since).TotalDays);
            if (day < OutputByDay.Length)
            {
                OutputByDay[day] += record.OutputTokens;
            }
        }
    }
}

/// <summary>How one observed class became a workload of the scenario.</summary>
/// <param name="Name">The class (served model) and the workload's name.</param>
/// <param name="Model">The scenario model it is planned as.</param>
/// <param name="Template">The scenario workload whose latency target, batch share and surges it took.</param>
/// <param name="GrowthFromLedger">True when <paramref name="GrowthPerMonth"/> is the observed trend, false when it is the template's.</param>
public sealed record LedgerWorkload(string Name, string Model, string Template, double GrowthPerMonth, bool GrowthFromLedger);

/// <summary>A scenario whose demand and cache lever come from the ledger, with what was derived and what was kept.</summary>
public sealed record LedgerScenario(
    [property: JsonIgnore] Scenario Scenario,
    LedgerDemand Observed,
    IReadOnlyList<LedgerWorkload> Workloads,
    double CacheHitRate,
    IReadOnlyList<string> Notes);
