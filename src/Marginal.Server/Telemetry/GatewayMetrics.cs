using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Marginal.Server.Telemetry;

/// <summary>The gateway's own instruments, exported through OpenTelemetry (Prometheus at <c>/metrics</c>).</summary>
public sealed class GatewayMetrics
{
    public const string MeterName = "Marginal.Gateway";

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Counter<long> _tokens;

    public GatewayMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _requests = meter.CreateCounter<long>("marginal.gateway.requests", "{request}", "Chat completion requests by model, provider and outcome.");
        _duration = meter.CreateHistogram<double>("marginal.gateway.request.duration", "s", "Time from request to the last byte of the answer.");
        _timeToFirstToken = meter.CreateHistogram<double>("marginal.gateway.time_to_first_token", "s", "Time from request to the first streamed content chunk.");
        _tokens = meter.CreateCounter<long>("marginal.gateway.tokens", "{token}", "Tokens by model and direction (input, output).");
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
