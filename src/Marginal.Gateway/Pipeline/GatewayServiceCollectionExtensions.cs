using Marginal.Core.Routing;
using Marginal.Gateway.Capacity;
using Marginal.Gateway.Model;
using Marginal.Gateway.Routing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Marginal.Gateway.Pipeline;

/// <summary>Registers the gateway in a container: the same for the server, tests and benchmarks.</summary>
public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// Registers <paramref name="models"/>, the router's feedback memory (shared with the other nodes when an
    /// <see cref="ISharedRoutePending"/> is registered) and the <see cref="IChatClient"/> that
    /// <see cref="GatewayPipeline.Build"/> assembles from what else the container holds. A <see cref="TimeProvider"/>
    /// registered before wins over the system clock.
    /// </summary>
    public static IServiceCollection AddMarginalGateway(this IServiceCollection services, GatewayModelSource models)
    {
        services.TryAddSingleton(TimeProvider.System);
        // One set of upstream cool-downs for chat and embeddings: a Retry-After told to one holds for the other.
        services.TryAddSingleton(sp => new UpstreamCooldowns(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(models);
        // One memory for routing decisions and POST /v1/feedback, so feedback moves later decisions.
        services.TryAddSingleton(sp => new RouteFeedback(shared: sp.GetService<ISharedRoutePending>()));
        services.AddSingleton<IChatClient>(GatewayPipeline.Build);
        return services;
    }
}
