using System.Globalization;
using Marginal.Core.Ledger;

namespace Marginal.Planner.Scenarios;

/// <summary>
/// What one owned pool served of one model over the window: its output tokens and the hours it was busy serving them.
/// Busy hours are the pool's loaded cost of those requests ÷ its cost per hour, as the economics report counts them
/// (each request is charged the pool's hourly cost × its share of busy time; docs/economics.md, "Owned capacity").
/// </summary>
/// <param name="Pool">The owned provider (a <c>kind: local</c> provider with a <c>pool:</c> in the gateway's configuration).</param>
/// <param name="Model">The served model, as the ledger names it.</param>
public sealed record PoolThroughput(string Pool, string Model, long Requests, long OutputTokens, double BusyHours)
{
    /// <summary>Output tokens per busy second of the whole pool.</summary>
    public double TokensPerSecond => BusyHours > 0 ? OutputTokens / (BusyHours * 3600) : 0;
}

/// <summary>
/// The throughput figure the planner used for one option serving one workload: measured on the owned pool of the same
/// name in the ledger, or the performance model's catalogue estimate.
/// </summary>
/// <param name="Option">The scenario's supply option.</param>
/// <param name="Workload">The workload (with <c>--from-ledger</c>, the served model).</param>
/// <param name="OutputTokensPerGpuHour">The figure used; null when the option cannot serve the workload.</param>
/// <param name="Measured">The ledger's figure behind it; null for the catalogue estimate.</param>
/// <param name="Gpus">Accelerators the measured pool is taken to have: the option's <c>gpus_per_node</c> (one node).</param>
public sealed record ThroughputFigure(string Option, string Workload, double? OutputTokensPerGpuHour, PoolThroughput? Measured, int Gpus)
{
    /// <summary>"measured: N tok/s from the ledger over T busy hours …" or "catalogue estimate: …".</summary>
    public string Describe() => Measured is { } m
        ? string.Create(CultureInfo.InvariantCulture,
            $"measured: {m.TokensPerSecond:#,0.#} tok/s from the ledger over {m.BusyHours:#,0.##} busy hours (pool '{m.Pool}', {m.OutputTokens:N0} output tokens, {m.Requests:N0} requests; taken as {Gpus} GPUs: {OutputTokensPerGpuHour:#,0} per GPU-hour)")
        : OutputTokensPerGpuHour is { } t
            ? string.Create(CultureInfo.InvariantCulture, $"catalogue estimate: {t:#,0} output tokens per GPU-hour (performance model)")
            : "catalogue estimate: cannot serve it";
}

/// <summary>Measured throughput of the owned pools, from the ledger (<see cref="Derive"/>), and how a scenario takes it (<see cref="ApplyTo"/>).</summary>
public static class LedgerThroughput
{
    /// <summary>
    /// Per (pool, served model): output tokens and busy hours over [since, until) of the records served on
    /// <paramref name="poolCostPerHour"/>'s pools (by provider name; a pool whose cost per hour is not above 0 has no busy time and is left out).
    /// </summary>
    public static IReadOnlyList<PoolThroughput> Derive(IEnumerable<UsageRecord> records, IReadOnlyDictionary<string, decimal> poolCostPerHour, DateTimeOffset since, DateTimeOffset until)
    {
        var sums = new SortedDictionary<(string Pool, string Model), (long Requests, long Output, decimal Cost)>();
        foreach (var r in records)
        {
            if (r.Time < since || r.Time >= until || r.Provider is not { } pool || r.ServedModel is not { } model
                || !poolCostPerHour.TryGetValue(pool, out var perHour) || perHour <= 0)
            {
                continue;
            }
            var s = sums.GetValueOrDefault((pool, model));
            sums[(pool, model)] = (s.Requests + (r.Kind == "usage" ? 1 : 0), s.Output + r.OutputTokens, s.Cost + (r.CostUsd ?? 0));
        }
        return sums.Where(s => s.Value.Output > 0 && s.Value.Cost > 0)
            .Select(s => new PoolThroughput(s.Key.Pool, s.Key.Model, s.Value.Requests, s.Value.Output, (double)(s.Value.Cost / poolCostPerHour[s.Key.Pool])))
            .ToList();
    }

    /// <summary>
    /// The scenario with the measured figures in place of the catalogue's estimate: a pool's figure applies to the option
    /// of kind <c>own</c> named like the pool (or whose <c>supplier</c> is the pool), for the workload named like the served
    /// model (the workloads <c>--from-ledger</c> derives are). The pool is taken to be one node of the option:
    /// per GPU-hour = output tokens ÷ busy hours ÷ gpus_per_node. Pools that match no option are named in the notes.
    /// </summary>
    public static Scenario ApplyTo(Scenario scenario, IReadOnlyList<PoolThroughput> measured, out IReadOnlyList<string> notes)
    {
        var used = new Dictionary<(string Option, string Workload), MeasuredThroughput>();
        var left = new List<string>();
        foreach (var m in measured)
        {
            var option = scenario.Config.Supply.FirstOrDefault(o => o.Value?.Kind == "own" && (o.Key == m.Pool || o.Value.Supplier == m.Pool));
            if (option.Value is null)
            {
                left.Add($"pool '{m.Pool}' served {m.Model} but no supply option of kind own is named '{m.Pool}' (or has supplier '{m.Pool}'): its measured throughput is not used");
                continue;
            }
            if (!scenario.Config.Workloads.ContainsKey(m.Model))
            {
                left.Add($"pool '{m.Pool}' served {m.Model}, which is no workload of the scenario: its measured throughput is not used");
                continue;
            }
            var gpus = option.Value.GpusPerNode;
            used[(option.Key, m.Model)] = new MeasuredThroughput(m, gpus, m.OutputTokens / m.BusyHours / gpus);
        }
        notes = left;
        return scenario with { Measured = used };
    }

    /// <summary>For each option with accelerators and each workload, the figure the plan used.</summary>
    public static IReadOnlyList<ThroughputFigure> Figures(Optimisation.PlanInputs inputs)
    {
        var figures = new List<ThroughputFigure>();
        for (var o = 0; o < inputs.Options.Count; o++)
        {
            var option = inputs.Options[o];
            if (!option.HasGpus)
            {
                continue;
            }
            foreach (var workload in inputs.Classes.Select(c => c.Workload).Distinct())
            {
                var served = Enumerable.Range(0, inputs.Classes.Count).Where(c => inputs.Classes[c].Workload == workload && inputs.Throughput[o][c] > 0).ToList();
                var measured = inputs.Scenario.Measured.GetValueOrDefault((option.Name, workload));
                double? perGpuHour = measured?.OutputTokensPerGpuHour ?? (served.Count > 0 ? served.Max(c => inputs.Throughput[o][c]) : null);
                figures.Add(new ThroughputFigure(option.Name, workload, perGpuHour, measured?.Pool, measured?.Gpus ?? option.Config.GpusPerNode));
            }
        }
        return figures;
    }
}

/// <summary>A measured figure laid over one option and workload: <paramref name="OutputTokensPerGpuHour"/> replaces the performance model's estimate.</summary>
public sealed record MeasuredThroughput(PoolThroughput Pool, int Gpus, double OutputTokensPerGpuHour);
