using System.Collections.Concurrent;
using Marginal.Core.Errors;
using Marginal.Core.Pricing;
using Marginal.Core.Requests;
using Marginal.Gateway.Model;

namespace Marginal.Gateway.Capacity;

/// <summary>
/// Upstreams that asked to be left alone: one that answered 429 or 503 with Retry-After is skipped until that time has
/// passed. One instance serves chat (<see cref="CapacityChatClient"/>) and embeddings
/// (<see cref="CapacityEmbeddingGenerator"/>), so a wait one of them was told holds for the other. Keyed by provider and
/// upstream id; outlives config reloads on purpose. Thread-safe.
/// </summary>
public sealed class UpstreamCooldowns(TimeProvider time)
{
    private readonly ConcurrentDictionary<(string Provider, string Upstream), DateTimeOffset> _coolingUntil = new();

    /// <summary>
    /// True when <paramref name="deployment"/> is cooling down: the skip is recorded as an attempt, and
    /// <paramref name="last"/> becomes a 429 with the wait left, unless an error of another kind came before.
    /// </summary>
    public bool IsCooling(ModelDeployment deployment, GatewayContext? context, ref GatewayException? last)
    {
        var key = (deployment.Provider.Name, deployment.UpstreamId);
        if (!_coolingUntil.TryGetValue(key, out var until))
        {
            return false;
        }
        var wait = until - time.GetUtcNow();
        if (wait <= TimeSpan.Zero)
        {
            _coolingUntil.TryRemove(KeyValuePair.Create(key, until));
            return false;
        }
        context?.Attempts.Add(new UpstreamAttempt(deployment.Model, deployment.Provider.Name, "skipped_cooling_down"));
        if (last is null || last.Kind == GatewayErrorKind.RateLimited)
        {
            last = new GatewayException(GatewayErrorKind.RateLimited, $"Provider '{deployment.Provider.Name}' asked to wait before the next request.", "upstream_rate_limited") { RetryAfter = wait };
        }
        return true;
    }

    /// <summary>
    /// Starts <paramref name="deployment"/>'s cool-down when <paramref name="error"/> carries a Retry-After. An owned
    /// model's 429 comes from its own scheduler queue, which may have room at the next decode step: its Retry-After goes
    /// to the client, but the gateway does not stop sending to it.
    /// </summary>
    public void Failed(ModelDeployment deployment, GatewayException error)
    {
        if (error.RetryAfter is { } retryAfter && retryAfter > TimeSpan.Zero && deployment.Provider.Capacity != CapacityKind.Owned)
        {
            _coolingUntil[(deployment.Provider.Name, deployment.UpstreamId)] = time.GetUtcNow() + retryAfter;
        }
    }
}
