using System.Diagnostics;
using System.Diagnostics.Metrics;
using Marginal.Gateway.Model;
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
    private readonly Counter<double> _cost;

    /// <summary>
    /// Bucket bounds in seconds for the request duration: OpenTelemetry's GenAI semantic conventions for
    /// <c>gen_ai.client.operation.duration</c> (opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics, read 2026-12-07).
    /// Without advice the SDK's default bounds (0, 5, 10 … 10000) are meant for milliseconds, so every request would
    /// land in the first bucket.
    /// </summary>
    public static readonly double[] DurationBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

    /// <summary>Bucket bounds in seconds for time to first token: the same conventions' <c>gen_ai.server.time_to_first_token</c>.</summary>
    public static readonly double[] FirstTokenBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

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
        _duration = meter.CreateHistogram("marginal.gateway.request.duration", "s", "Time from request to the last byte of the answer.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _timeToFirstToken = meter.CreateHistogram("marginal.gateway.time_to_first_token", "s", "Time from request to the first streamed content chunk.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = FirstTokenBuckets });
        _tokens = meter.CreateCounter<long>("marginal.gateway.tokens", "{token}", "Tokens by model and direction (input, output).");
        // A float for the exporter only: the ledger keeps every cost as decimal, and this counter is for dashboards and alerts.
        _cost = meter.CreateCounter<double>("marginal.gateway.cost", "USD", "Cost of the requests served, in USD, by model, provider and tenant (ledger pricing).");
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

    /// <summary>
    /// Adds a billed request's cost. Tenants are bounded (each is made by an operator through a key), so the label's
    /// cardinality is too; replays and duplicates cost nothing new and are not counted.
    /// </summary>
    public void Cost(string? model, string? provider, string tenant, decimal? costUsd)
    {
        if (costUsd is > 0m)
        {
            _cost.Add((double)costUsd.Value, new KeyValuePair<string, object?>("model", model ?? "none"),
                new KeyValuePair<string, object?>("provider", provider ?? "none"), new KeyValuePair<string, object?>("tenant", tenant));
        }
    }

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
