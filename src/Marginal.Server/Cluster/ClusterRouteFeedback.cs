using System.Globalization;
using System.Runtime.InteropServices;
using Marginal.Core.Ledger;
using Marginal.Gateway.Routing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Marginal.Server.Cluster;

/// <summary>
/// Router feedback across the cluster, over <see cref="ClusterRedis.RouteLabels"/>. Only the node that routed a request
/// holds its prompt embedding, but <c>POST /v1/feedback</c> may reach any node. The node that takes the feedback and
/// holds the embedding learns the label and announces <c>label &lt;node&gt; &lt;label&gt; &lt;embedding&gt; &lt;alias&gt;</c>
/// (the embedding as base64 little-endian floats); every other node adds it to its own <see cref="RouteFeedback"/>. A
/// node that takes feedback on a request it did not route announces <c>ask &lt;node&gt; &lt;label&gt; &lt;request id&gt;</c>;
/// the node holding that embedding learns the label, stores the example in the shared store (so restarts rebuild it)
/// and announces it as above. A node ignores its own messages. Pub/sub reaches only the nodes connected at that
/// moment: a node that missed a label gets it from the store on its next start.
/// </summary>
internal sealed partial class ClusterRouteFeedback(ClusterRedis redis, RouteFeedback feedback, IRouteExampleStore? examples, ILogger<ClusterRouteFeedback> logger) : IHostedService
{
    private readonly string _node = Guid.NewGuid().ToString("N")[..12];
    private IAsyncDisposable? _subscription;

    public async Task StartAsync(CancellationToken cancellationToken) =>
        _subscription = await redis.RouteLabels.SubscribeAsync(Heard).ConfigureAwait(false);

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_subscription is not null)
        {
            await _subscription.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Tells the other nodes of <paramref name="label"/> on <paramref name="example"/>, learned here.</summary>
    public Task LearnedAsync(RouteExample example, float label) =>
        PublishAsync($"label {_node} {label.ToString(CultureInfo.InvariantCulture)} {Convert.ToBase64String(MemoryMarshal.AsBytes(example.Embedding.AsSpan()))} {example.Alias}");

    /// <summary>Hands <paramref name="label"/> on <paramref name="requestId"/>, which this node did not route, to the node that did.</summary>
    public Task AskOwnerAsync(string requestId, float label) =>
        PublishAsync($"ask {_node} {label.ToString(CultureInfo.InvariantCulture)} {requestId}");

    private async Task PublishAsync(string message)
    {
        try
        {
            await redis.RouteLabels.PublishAsync(message).ConfigureAwait(false);
        }
        catch (Exception error) when (error is RedisException or TimeoutException or ObjectDisposedException)
        {
            LogNotAnnounced(logger, error.Message);
        }
    }

    private async void Heard(string message)
    {
        // The last field is the rest of the message: a request id (a client's Idempotency-Key) may hold spaces.
        var parts = message.Split(' ', 4);
        if (parts.Length < 4 || parts[1] == _node || !float.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var label))
        {
            return;
        }
        switch (parts[0])
        {
            case "label" when parts[3].Split(' ', 2) is [var encoded, var alias] && Decode(encoded) is { } embedding:
                feedback.Add(alias, embedding, label);
                break;
            case "ask" when feedback.Learn(parts[3], label, out var example):
                await LearnedAsync(example!, label).ConfigureAwait(false);
                await SaveAsync(example!).ConfigureAwait(false);
                break;
        }
    }

    private async Task SaveAsync(RouteExample example)
    {
        if (examples is null)
        {
            return;
        }
        try
        {
            await examples.SaveRouteExampleAsync(example).ConfigureAwait(false);
        }
        catch (Exception error) when (error is not OutOfMemoryException)
        {
            // The label is in every node's memory already; only a restart before the store is back loses it.
            LogNotStored(logger, example.RequestId, error.Message);
        }
    }

    private static float[]? Decode(string base64)
    {
        var bytes = new byte[base64.Length * 3 / 4];
        if (!Convert.TryFromBase64String(base64, bytes, out var written) || written % sizeof(float) != 0 || written == 0)
        {
            return null;
        }
        return MemoryMarshal.Cast<byte, float>(bytes.AsSpan(0, written)).ToArray();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not tell the other nodes of a router label (Redis: {Reason}); they learn it at their next start")]
    private static partial void LogNotAnnounced(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not store the router example of request {RequestId} ({Reason}); it is learned until the next restart")]
    private static partial void LogNotStored(ILogger logger, string requestId, string reason);
}
