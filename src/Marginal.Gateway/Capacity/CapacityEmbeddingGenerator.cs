using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Gateway.Model;
using Marginal.Gateway.Providers;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Capacity;

/// <summary>
/// Where an embeddings request runs: walks the model's chain (the model, then its fallbacks) over the deployments whose
/// provider serves embeddings, skips upstreams cooling down (<paramref name="cooldowns"/>, the same instance as chat's
/// <see cref="CapacityChatClient"/>), and moves on after a 429, 5xx, timeout or connection error. Thread-safe.
/// </summary>
public sealed class CapacityEmbeddingGenerator(GatewayModelSource models, TimeProvider time, UpstreamCooldowns cooldowns) : IEmbeddingGenerator<string, Embedding<float>>
{
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var name = options?.ModelId;
        if (name is null || !models.Current.Models.TryGetValue(name, out var route))
        {
            throw GatewayException.ModelNotFound($"The model '{name}' does not exist on this gateway.");
        }
        var context = options.GetGatewayContext();
        GatewayException? last = null;
        foreach (var deployment in route.Chain)
        {
            if (deployment.Provider.Embeddings is not { } factory || cooldowns.IsCooling(deployment, context, ref last))
            {
                continue;
            }
            try
            {
                using var generator = factory(deployment.UpstreamId);
                var upstream = new EmbeddingGenerationOptions { Dimensions = options!.Dimensions, ModelId = deployment.UpstreamId };
                var result = await generator.GenerateAsync(values, upstream, cancellationToken);
                if (context is not null)
                {
                    context.Attempts.Add(new UpstreamAttempt(deployment.Model, deployment.Provider.Name, "ok"));
                    context.ServedModel = deployment.Model;
                    context.Provider = deployment.Provider.Name;
                }
                return result;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && !ProviderErrors.IsOwnFailure(ex))
            {
                last = ProviderErrors.Classify(ex, deployment.Provider.Name, time);
                context?.Attempts.Add(new UpstreamAttempt(deployment.Model, deployment.Provider.Name, last.Code ?? last.Kind.ToString()));
                cooldowns.Failed(deployment, last);
                if (!last.IsRetryableElsewhere)
                {
                    throw last;
                }
            }
        }
        throw last ?? new GatewayException(GatewayErrorKind.UpstreamUnavailable, $"No provider could serve model '{route.Name}'.", "no_provider_available");
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
