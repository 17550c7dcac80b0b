using System.Runtime.CompilerServices;
using Marginal.Core.Errors;
using Marginal.Core.Pricing;
using Marginal.Core.Requests;
using Marginal.Gateway.Model;
using Marginal.Gateway.Providers;
using Marginal.Gateway.Shaping;
using Marginal.Local.Scheduling;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Marginal.Gateway.Capacity;

/// <summary>
/// Picks where a routed request runs and calls that provider. Walks the model's chain (the model,
/// then its fallbacks) and moves on after a 429, 5xx, timeout or connection error — for a stream only
/// while nothing has been yielded yet. An upstream that answered 429 or 503 with Retry-After is skipped
/// until that time has passed (<paramref name="cooldowns"/>, shared with the embeddings pipeline; null: a private one).
/// Thread-safe.
/// </summary>
public sealed partial class CapacityChatClient(GatewayModelSource models, TimeProvider time, ILogger<CapacityChatClient>? logger = null, UpstreamCooldowns? cooldowns = null) : IChatClient
{
    private readonly ILogger _logger = logger ?? NullLogger<CapacityChatClient>.Instance;
    private readonly UpstreamCooldowns _cooldowns = cooldowns ?? new UpstreamCooldowns(time);
    private readonly PrefixAffinity _affinity = new();

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (route, context) = Resolve(options);
        var chain = ByPrefixAffinity(route, messages);
        GatewayException? last = null;
        for (var i = 0; i < chain.Count; i++)
        {
            var deployment = chain[i];
            if (_cooldowns.IsCooling(deployment, context, ref last) || IsSpilling(deployment, i < chain.Count - 1, context, ref last))
            {
                continue;
            }
            try
            {
                var response = await deployment.Provider.Chat.GetResponseAsync(messages, ForUpstream(options!, deployment), cancellationToken);
                Served(deployment, context);
                return response;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && !ProviderErrors.IsOwnFailure(ex))
            {
                last = Then(last, Failed(deployment, context, ex));
                if (!last.IsRetryableElsewhere)
                {
                    throw last;
                }
            }
        }
        throw Exhausted(route, last);
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (route, context) = Resolve(options);
        GatewayException? last = null;
        IAsyncEnumerator<ChatResponseUpdate>? stream = null;
        ModelDeployment? serving = null;
        var chain = ByPrefixAffinity(route, messages);
        for (var i = 0; i < chain.Count && stream is null; i++)
        {
            var deployment = chain[i];
            if (_cooldowns.IsCooling(deployment, context, ref last) || IsSpilling(deployment, i < chain.Count - 1, context, ref last))
            {
                continue;
            }
            IAsyncEnumerator<ChatResponseUpdate>? candidate = null;
            try
            {
                candidate = deployment.Provider.Chat.GetStreamingResponseAsync(messages, ForUpstream(options!, deployment), cancellationToken).GetAsyncEnumerator(cancellationToken);
                // Nothing reaches the client until the first update is in hand, so failing over is still safe.
                if (!await candidate.MoveNextAsync())
                {
                    throw new GatewayException(GatewayErrorKind.UpstreamError, $"Provider '{deployment.Provider.Name}' ended the stream before sending anything.", "upstream_stream_truncated");
                }
                stream = candidate;
                serving = deployment;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && !ProviderErrors.IsOwnFailure(ex))
            {
                if (candidate is not null)
                {
                    await candidate.DisposeAsync();
                }
                last = Then(last, Failed(deployment, context, ex));
                if (!last.IsRetryableElsewhere)
                {
                    throw last;
                }
            }
        }
        if (stream is null || serving is null)
        {
            throw Exhausted(route, last);
        }

        Served(serving, context);
        await using (stream)
        {
            var finished = false;
            var update = stream.Current;
            while (true)
            {
                finished |= update.FinishReason is not null;
                yield return update;
                if (!await NextAsync(stream, serving, cancellationToken))
                {
                    break;
                }
                update = stream.Current;
            }
            if (!finished)
            {
                // The upstream closed without a finish reason: a truncated stream, not a complete answer.
                throw new GatewayException(GatewayErrorKind.UpstreamError, $"Provider '{serving.Provider.Name}' ended the stream before it finished.", "upstream_stream_truncated");
            }
        }
    }

    private async ValueTask<bool> NextAsync(IAsyncEnumerator<ChatResponseUpdate> stream, ModelDeployment serving, CancellationToken cancellationToken)
    {
        try
        {
            return await stream.MoveNextAsync();
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && !ProviderErrors.IsOwnFailure(ex))
        {
            throw ProviderErrors.Classify(ex, serving.Provider.Name, time);
        }
    }

    private (ModelRoute Route, GatewayContext? Context) Resolve(ChatOptions? options)
    {
        var model = options?.ModelId;
        if (model is null || !models.Current.Models.TryGetValue(model, out var route))
        {
            throw GatewayException.ModelNotFound($"The model '{model}' does not exist on this gateway.");
        }
        return (route, options.GetGatewayContext());
    }

    /// <summary>
    /// Prefix affinity (docs/architecture.md, "Prefix-aware shaping and affinity"): when the chain starts with two or
    /// more owned deployments (replicas of one model: a local model whose fallbacks are the same model on other local
    /// providers), the replica <see cref="PrefixAffinity"/> picks for the prompt's prefix goes first, so requests sharing
    /// a long prefix meet the KV cache that holds it; the others follow in chain order, then the rest of the chain.
    /// A replica's load is its pool's queued plus running sequences (zero when it has no scheduler to ask).
    /// </summary>
    private IReadOnlyList<ModelDeployment> ByPrefixAffinity(ModelRoute route, IEnumerable<ChatMessage> messages)
    {
        var chain = route.Chain;
        var owned = 0;
        while (owned < chain.Count && chain[owned].Provider.Capacity == CapacityKind.Owned)
        {
            owned++;
        }
        if (owned < 2)
        {
            return chain;
        }
        var loads = new int[owned];
        for (var i = 0; i < owned; i++)
        {
            loads[i] = chain[i].Provider.Chat.GetService(typeof(BatchScheduler)) is BatchScheduler scheduler && scheduler.GetStats() is { } stats
                ? stats.QueueDepth + stats.ActiveSequences
                : 0;
        }
        var pick = _affinity.Pick(_affinity.KeyOf(messages), loads);
        if (pick == 0)
        {
            return chain;
        }
        var ordered = new List<ModelDeployment>(chain.Count) { chain[pick] };
        for (var i = 0; i < chain.Count; i++)
        {
            if (i != pick)
            {
                ordered.Add(chain[i]);
            }
        }
        return ordered;
    }

    private static ChatOptions ForUpstream(ChatOptions options, ModelDeployment deployment)
    {
        var upstream = options.Clone();
        upstream.ModelId = deployment.UpstreamId;
        return upstream;
    }

    /// <summary>
    /// Spill-over: an owned pool whose expected queue wait passes its <see cref="UpstreamProvider.MaxQueueWait"/> is
    /// skipped while the chain has another source, so the request runs on rented or API capacity instead of queuing.
    /// The last source in the chain is never skipped: queuing there beats refusing.
    /// </summary>
    private static bool IsSpilling(ModelDeployment deployment, bool hasNext, GatewayContext? context, ref GatewayException? last)
    {
        if (!hasNext || deployment.Provider.MaxQueueWait is not { } bound
            || deployment.Provider.Chat.GetService(typeof(BatchScheduler)) is not BatchScheduler scheduler)
        {
            return false;
        }
        var wait = scheduler.ExpectedWait();
        if (wait <= bound)
        {
            return false;
        }
        context?.Attempts.Add(new UpstreamAttempt(deployment.Model, deployment.Provider.Name, "spilled_queue_wait"));
        last ??= new GatewayException(GatewayErrorKind.RateLimited,
            $"Provider '{deployment.Provider.Name}' would queue this request for about {wait.TotalSeconds:0.#}s (bound {bound.TotalSeconds:0.###}s).", "local_queue_wait")
        {
            RetryAfter = wait,
        };
        return true;
    }

    private static void Served(ModelDeployment deployment, GatewayContext? context)
    {
        if (context is null)
        {
            return;
        }
        context.Attempts.Add(new UpstreamAttempt(deployment.Model, deployment.Provider.Name, "ok"));
        context.ServedModel = deployment.Model;
        context.Provider = deployment.Provider.Name;
    }

    private GatewayException Failed(ModelDeployment deployment, GatewayContext? context, Exception exception)
    {
        var error = ProviderErrors.Classify(exception, deployment.Provider.Name, time);
        context?.Attempts.Add(new UpstreamAttempt(deployment.Model, deployment.Provider.Name, error.Code ?? error.Kind.ToString()));
        _cooldowns.Failed(deployment, error);
        LogUpstreamFailed(_logger, deployment.Provider.Name, deployment.UpstreamId, error.Code, error.UpstreamStatus, exception.GetType().Name);
        return error;
    }

    /// <summary>
    /// The error to report after another failure: the latest one decides kind, code and Retry-After (it is the one
    /// the client can act on), and every message so far is kept in order, so a client whose model and fallbacks all
    /// failed learns why each one did.
    /// </summary>
    private static GatewayException Then(GatewayException? earlier, GatewayException latest) =>
        earlier is null
            ? latest
            : new GatewayException(latest.Kind, $"{earlier.Message} Then: {latest.Message}", latest.Code, latest.Param, latest)
            {
                RetryAfter = latest.RetryAfter,
                UpstreamStatus = latest.UpstreamStatus,
            };

    private static GatewayException Exhausted(ModelRoute route, GatewayException? last) =>
        last ?? new GatewayException(GatewayErrorKind.UpstreamUnavailable, $"No provider could serve model '{route.Name}'.", "no_provider_available");

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream {Provider}/{Upstream} failed: {Code} (status {Status}, {ExceptionType})")]
    private static partial void LogUpstreamFailed(ILogger logger, string provider, string upstream, string? code, int? status, string exceptionType);
}
