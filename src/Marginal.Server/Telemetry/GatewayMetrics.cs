using System.Diagnostics;
using System.Diagnostics.Metrics;
using Marginal.Gateway.Pipeline;
using Marginal.Local.Scheduling;

namespace Marginal.Server.Telemetry;

/// <summary>The gateway's own instruments, exported through OpenTelemetry (Prometheus at <c>/metrics</c>).</summary>
public sealed class GatewayMetrics
{
    public const string MeterName = "Marginal.Gateway";

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Counter<long> _tokens;

    public GatewayMetrics(IMeterFactory meters, GatewayModelSource models)
    {
        var meter = meters.Create(MeterName);
        // Owned pools: read from each local model's scheduler when the metrics are collected, since it started.
        meter.CreateObservableGauge("marginal.pool.busy_fraction", () => Pools(models, s => s.BusyFraction), "1",
            "Share of time the owned pool spent decoding.");
        meter.CreateObservableGauge("marginal.pool.batch_occupancy", () => Pools(models, s => s.MeanBatchOccupancy), "1",
            "Mean sequences per decode step ÷ batch slots, while busy.");
        meter.CreateObservableGauge("marginal.pool.tokens_per_second", () => Pools(models, s => s.TokensPerSecond), "{token}/s",
            "Generated tokens per second of uptime.");
        meter.CreateObservableGauge("marginal.pool.queue_depth", () => Pools(models, s => (double)s.QueueDepth), "{request}",
            "Requests waiting for a batch slot.");
        _requests = meter.CreateCounter<long>("marginal.gateway.requests", "{request}", "Chat completion requests by model, provider and outcome.");
        _duration = meter.CreateHistogram<double>("marginal.gateway.request.duration", "s", "Time from request to the last byte of the answer.");
        _timeToFirstToken = meter.CreateHistogram<double>("marginal.gateway.time_to_first_token", "s", "Time from request to the first streamed content chunk.");
        _tokens = meter.CreateCounter<long>("marginal.gateway.tokens", "{token}", "Tokens by model and direction (input, output).");
    }

    private static IEnumerable<Measurement<double>> Pools(GatewayModelSource models, Func<SchedulerStats, double> value)
    {
        foreach (var (name, provider) in models.Current.Providers)
        {
            if (provider.Chat.GetService(typeof(BatchScheduler)) is BatchScheduler scheduler)
            {
                yield return new Measurement<double>(value(scheduler.GetStats()), new KeyValuePair<string, object?>("provider", name));
            }
        }
    }

    public void Completed(string? model, string? provider, string outcome, bool stream, long startTimestamp)
    {
        var tags = new TagList
        {
            { "model", model ?? "none" },
            { "provider", provider ?? "none" },
            { "outcome", outcome },
            { "stream", stream },
        };
        _requests.Add(1, tags);
        _duration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, tags);
    }

    public void FirstToken(string? model, long startTimestamp) =>
        _timeToFirstToken.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, new KeyValuePair<string, object?>("model", model ?? "none"));

    public void Tokens(string? model, long? input, long? output)
    {
        if (input is > 0)
        {
            _tokens.Add(input.Value, new KeyValuePair<string, object?>("model", model ?? "none"), new KeyValuePair<string, object?>("direction", "input"));
        }
        if (output is > 0)
        {
            _tokens.Add(output.Value, new KeyValuePair<string, object?>("model", model ?? "none"), new KeyValuePair<string, object?>("direction", "output"));
        }
    }
}
