using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Marginal.Core.Pricing;
using Marginal.Core.Requests;
using Marginal.Gateway.Configuration;
using Marginal.Local;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Providers.Local;

/// <summary>
/// A GGUF model served in-process by Marginal.Local: owned capacity. A loaded model is shared by every snapshot whose
/// provider settings are the same, so a config reload does not load the weights again or drop requests in flight.
/// A model that cannot be loaded leaves the provider answering 503 with the reason, as a missing key does.
/// </summary>
internal static class LocalProvider
{
    private static readonly ConcurrentDictionary<LocalModelOptions, Lazy<LocalChatClient>> Loaded = new();

    public static UpstreamProvider Create(string name, ProviderConfig config, TimeProvider time)
    {
        var options = new LocalModelOptions
        {
            ModelPath = Path.GetFullPath(config.Path!),
            ModelName = name,
            Threads = config.Threads ?? Environment.ProcessorCount,
            MaxBatch = config.MaxBatch ?? 8,
            QueueLimit = config.QueueLimit ?? 64,
            Context = config.Context ?? 0,
            Backend = config.Backend == "cuda" ? LocalBackend.Cuda : LocalBackend.Cpu,
            JsonStringLimit = config.JsonStringLimit ?? 0,
        };
        var lazy = Loaded.GetOrAdd(options, o => new Lazy<LocalChatClient>(() => new LocalChatClient(o, time)));
        try
        {
            return new UpstreamProvider(name, "local", new SharedChatClient(lazy.Value, PoolCost(config.Pool)), null)
            {
                Capacity = CapacityKind.Owned,
                MaxQueueWait = config.MaxQueueWait is { } wait && ConfigLoader.TryParseDuration(wait, out var bound) ? bound : null,
            };
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Forget the failure so a later reload (after the file is fixed) tries again.
            Loaded.TryRemove(new KeyValuePair<LocalModelOptions, Lazy<LocalChatClient>>(options, lazy));
            var reason = ex switch
            {
                FileNotFoundException => "no such file",
                LocalBackendUnavailableException => ex.Message,
                _ => "llama.cpp could not load it",
            };
            return new UpstreamProvider(name, "local", new ProviderKeys.UnavailableChatClient(
                $"Provider '{name}' has no model: {Path.GetFileName(options.ModelPath)}: {reason}."), null) { Capacity = CapacityKind.Owned };
        }
    }

    private static OwnedPoolCost? PoolCost(PoolConfig? pool) => pool is null ? null
        : new OwnedPoolCost(pool.PurchaseUsd, pool.LifetimeMonths, pool.PowerKw, pool.UsdPerKwh, pool.Pue, pool.ColocationUsdPerMonth, pool.OperationsUsdPerMonth);

    /// <summary>
    /// The snapshot's handle on a shared model: disposing a snapshot's provider leaves the model loaded for the others.
    /// With a pool cost it charges each finished request for its share of busy time (on the request's context, which
    /// metering records).
    /// </summary>
    private sealed class SharedChatClient(IChatClient inner, OwnedPoolCost? pool) : IChatClient
    {
        public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            OpenAIOnlyFields.RejectOn(options, "local");
            var response = await inner.GetResponseAsync(messages, options, cancellationToken);
            Charge(response.Usage, options);
            return response;
        }

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            OpenAIOnlyFields.RejectOn(options, "local");
            await foreach (var update in inner.GetStreamingResponseAsync(messages, options, cancellationToken))
            {
                foreach (var content in update.Contents)
                {
                    if (content is UsageContent usage)
                    {
                        Charge(usage.Details, options);
                    }
                }
                yield return update;
            }
        }

        private void Charge(UsageDetails? usage, ChatOptions? options)
        {
            if (pool is not null && options.GetGatewayContext() is { } context && usage?.AdditionalCounts is { } counts
                && counts.TryGetValue(LocalChatClient.BusyTicksKey, out var ticks))
            {
                context.OwnedCost = pool.Charge(TimeSpan.FromTicks(ticks), counts.TryGetValue(LocalChatClient.QueuedKey, out var queued) && queued != 0);
            }
        }

        public object? GetService(Type serviceType, object? serviceKey = null) => inner.GetService(serviceType, serviceKey);

        public void Dispose()
        {
        }
    }
}
