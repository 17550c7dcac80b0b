using Marginal.Core.Caching;
using System.Runtime.CompilerServices;
using Marginal.Core.Pricing;
using Marginal.Core.Requests;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Embeddings;
using Marginal.Gateway.Model;
using Marginal.Gateway.Pricing;
using Marginal.Gateway.Tokens;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Caching;

/// <summary>
/// The response cache, between metering and routing so a hit is metered (at zero cost, its saving as lever
/// <c>cache</c>) and never routed. Exact: an identical request of the same tenant (<see cref="ResponseCacheKey"/>).
/// Semantic, on routes that opt in: the last user turn matched by embedding similarity within the same tenant,
/// model, options and earlier messages, and checked by <see cref="PromptChecks"/>. Only finished answers are stored:
/// errors, broken or abandoned streams never are, nor sampled answers unless the route opts in. A streamed answer is
/// kept as its updates and replayed as a stream. Sets <see cref="GatewayContext.CacheOutcome"/> to
/// <c>hit-exact</c>, <c>hit-semantic</c>, <c>miss</c> or <c>bypass</c> (the client opted out, or the request samples).
/// </summary>
public sealed class ResponseCacheChatClient : DelegatingChatClient
{
    public const string HitExact = "hit-exact";
    public const string HitSemantic = "hit-semantic";
    public const string Miss = "miss";
    public const string Bypass = "bypass";

    private readonly GatewayModelSource _models;
    private readonly TimeProvider _time;
    private readonly Func<GatewayModel, IEmbeddingGenerator<string, Embedding<float>>>? _embeddings;
    private readonly ISharedSemanticEntries? _shared;
    private readonly Lock _semanticLock = new();
    private SemanticCache? _semantic;

    /// <summary>
    /// <paramref name="store"/> null: an in-process exact cache bounded by the config; <paramref name="embeddings"/> null:
    /// the embeddings configured under <c>cache.semantic.embeddings</c>; <paramref name="shared"/> (cluster mode): semantic
    /// entries shared with the other nodes.
    /// </summary>
    public ResponseCacheChatClient(IChatClient innerClient, GatewayModelSource models, TimeProvider time, IResponseCacheStore? store = null,
        Func<GatewayModel, IEmbeddingGenerator<string, Embedding<float>>>? embeddings = null, ISharedSemanticEntries? shared = null) : base(innerClient)
    {
        _models = models;
        _time = time;
        _embeddings = embeddings;
        _shared = shared;
        var exact = models.Current.Config.Cache.Exact;
        Store = store ?? new MemoryResponseCacheStore(exact.MaxEntries, exact.MaxBytes, time);
        shared?.Listen(AddShared);
    }

    internal IChatClient Inner => InnerClient;

    public IResponseCacheStore Store { get; }

    /// <summary>The semantic cache once its first entry (or lookup) fixed the vector length; null before.</summary>
    public SemanticCache? Semantic => _semantic;

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var plan = Admit(options) is { } admitted ? await PlanAsync(messages, options!, admitted, cancellationToken) : null;
        if (plan is null)
        {
            return await base.GetResponseAsync(messages, options, cancellationToken);
        }
        if (plan.Hit is { } hit)
        {
            return hit.Updates?.ToChatResponse() ?? hit.Response;
        }
        var response = await base.GetResponseAsync(plan.Messages, options, cancellationToken);
        await StoreAsync(plan, response, null, cancellationToken);
        return response;
    }

    /// <summary>A request the cache stays out of (bypassed, sampled, cache off) gets the inner stream itself: no extra step per update.</summary>
    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        Admit(options) is { } admitted
            ? CachedStreamAsync(messages, options!, admitted, cancellationToken)
            : base.GetStreamingResponseAsync(messages, options, cancellationToken);

    private async IAsyncEnumerable<ChatResponseUpdate> CachedStreamAsync(IEnumerable<ChatMessage> messages, ChatOptions options, CacheTurn admitted, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var plan = await PlanAsync(messages, options, admitted, cancellationToken);
        if (plan.Hit is { } hit)
        {
            foreach (var update in hit.Updates ?? hit.Response.ToChatResponseUpdates())
            {
                yield return update;
            }
            yield break;
        }
        var kept = new List<ChatResponseUpdate>();
        await foreach (var update in base.GetStreamingResponseAsync(plan.Messages, options, cancellationToken))
        {
            kept.Add(update);
            yield return update;
        }
        // Reached only when the stream ended normally: an error or an abandoned stream leaves before this line.
        await StoreAsync(plan, kept.ToChatResponse(), kept, cancellationToken);
    }

    /// <summary>The cache's part in one request (decided without waiting on anything): the route and which caches apply.</summary>
    private sealed record CacheTurn(GatewayContext Context, GatewayModel Gateway, CacheRouteConfig? Route, bool Exact, bool Semantic);

    /// <summary>Null when the cache stays out of this request (with outcome <c>bypass</c> when the client opted out or it samples).</summary>
    private CacheTurn? Admit(ChatOptions? options)
    {
        if (options.GetGatewayContext() is not { } context || options!.ModelId is not { } model)
        {
            return null;
        }
        var gateway = _models.Current;
        var cache = gateway.Config.Cache;
        cache.Routes.TryGetValue(model, out var route);
        var exact = route?.Exact ?? cache.Exact.Enabled;
        var semantic = cache.Semantic.Enabled && route?.Semantic == true;
        if (!exact && !semantic)
        {
            return null;
        }
        // Providers sample when no temperature is given, so only an explicit 0 is deterministic enough to reuse.
        if (context.CacheBypass || (options.Temperature is not 0f && route?.CacheSampled != true))
        {
            context.CacheOutcome = Bypass;
            return null;
        }
        return new CacheTurn(context, gateway, route, exact, semantic);
    }

    /// <summary>What the cache does for an admitted request: the keys and, on a hit, the answer (context already filled).</summary>
    private async Task<Plan> PlanAsync(IEnumerable<ChatMessage> messages, ChatOptions options, CacheTurn admitted, CancellationToken cancellationToken)
    {
        var (context, gateway, route, exact, semantic) = admitted;
        var cache = gateway.Config.Cache;
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var plan = new Plan(context, list, exact ? ResponseCacheKey.Exact(context.Tenant, list, options) : null);
        if (plan.ExactKey is { } key && await Store.GetAsync(key, cancellationToken) is { } found)
        {
            return Hit(plan, found, HitExact, null);
        }
        if (semantic && list is [.., { Role: var role } last] && role == ChatRole.User && last.Text is { Length: > 0 } prompt
            && await EmbedAsync(gateway, prompt, cancellationToken) is { } vector)
        {
            plan.SemanticScope = ResponseCacheKey.SemanticScope(context.Tenant, list, options);
            plan.Prompt = prompt;
            plan.Vector = vector;
            var index = SemanticFor(vector.Length);
            var match = index.Find(plan.SemanticScope, prompt, vector, route!.Threshold ?? cache.Semantic.Threshold, cache.Semantic.MinMargin, out var refusedBy);
            // An entry from another node has its answer in the shared store; gone from there (expired, evicted): a miss.
            if (match is not null && (match.Answer ?? await SharedAnswerAsync(match.AnswerKey, cancellationToken)) is { } answer)
            {
                return Hit(plan, answer, HitSemantic, match.Similarity);
            }
            if (refusedBy is not null and not "threshold")
            {
                context.Tags.Add("cache-refused:" + refusedBy);
            }
        }
        context.CacheOutcome = Miss;
        return plan;
    }

    private static Plan Hit(Plan plan, CachedAnswer answer, string outcome, double? similarity)
    {
        var context = plan.Context;
        context.CacheOutcome = outcome;
        context.CacheSimilarity = similarity;
        context.ServedModel = answer.ServedModel;
        context.Provider = answer.Provider;
        if (answer.CostUsd is { } saved)
        {
            context.Savings.Add(new("cache", saved));
        }
        plan.Hit = answer;
        return plan;
    }

    private async Task StoreAsync(Plan plan, ChatResponse response, List<ChatResponseUpdate>? updates, CancellationToken cancellationToken)
    {
        if (response.FinishReason == ChatFinishReason.ContentFilter)
        {
            return;
        }
        var context = plan.Context;
        var answer = new CachedAnswer(response, updates, context.ServedModel, context.Provider, OriginalCost(context, plan.Messages, response));
        var cache = _models.Current.Config.Cache;
        if (plan.ExactKey is { } key)
        {
            await Store.SetAsync(key, answer, Ttl(cache.Exact.Ttl), cancellationToken);
        }
        if (plan.SemanticScope is { } scope)
        {
            var expires = _time.GetUtcNow() + Ttl(cache.Semantic.Ttl);
            SemanticFor(plan.Vector!.Length).Add(scope, plan.Prompt!, plan.Vector, answer, null, expires);
            if (_shared is not null)
            {
                // Finished here whatever the client does now: the other nodes get the entry either way.
                await _shared.ShareAsync(new SharedSemanticEntry(scope, plan.Prompt!, plan.Vector, cache.Semantic.Embeddings, $"semantic:{Guid.NewGuid():N}", expires),
                    answer, CancellationToken.None);
            }
        }
    }

    private ValueTask<CachedAnswer?> SharedAnswerAsync(string? key, CancellationToken cancellationToken) =>
        key is not null && _shared is not null ? _shared.AnswerAsync(key, cancellationToken) : ValueTask.FromResult<CachedAnswer?>(null);

    /// <summary>
    /// An entry another node added: into this node's index, unless it was embedded by other embeddings than this node's
    /// (its vector could not be compared with this node's queries).
    /// </summary>
    private void AddShared(SharedSemanticEntry entry)
    {
        var semantic = _models.Current.Config.Cache.Semantic;
        if (!semantic.Enabled || !string.Equals(entry.Embeddings, semantic.Embeddings, StringComparison.Ordinal)
            || (_semantic is { } current && current.Dimensions != entry.Vector.Length))
        {
            return;
        }
        SemanticFor(entry.Vector.Length).Add(entry.Scope, entry.Prompt, entry.Vector, null, entry.AnswerKey, entry.Expires);
    }

    // The config was validated on load, so the fallback is never taken.
    private static TimeSpan Ttl(string text) => Durations.TryParseTtl(text, out var ttl) ? ttl : TimeSpan.FromHours(1);

    /// <summary>What the answer cost when it was made: the saving each later hit records (null when unpriced).</summary>
    private decimal? OriginalCost(GatewayContext context, IReadOnlyList<ChatMessage> messages, ChatResponse response)
    {
        if (context.OwnedCost is { } owned)
        {
            return owned.FullyLoadedUsd;
        }
        return context.ServedModel is { } served && _models.Current.Models.TryGetValue(served, out var route)
            ? AnswerPricing.ListCost(route.Primary.Catalog, response.Usage, messages, response.Text)
            : null;
    }

    private async Task<float[]?> EmbedAsync(GatewayModel gateway, string prompt, CancellationToken cancellationToken)
    {
        var generator = _embeddings?.Invoke(gateway) ?? ConfiguredEmbeddings(gateway);
        if (generator is InProcessEmbeddingGenerator inProcess)
        {
            return inProcess.Embed(prompt, cancellationToken);
        }
        try
        {
            var vector = (await generator.GenerateAsync([prompt], cancellationToken: cancellationToken))[0].Vector.ToArray();
            VectorIndex.Normalise(vector);
            return vector;
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            // An embeddings endpoint that fails costs the request its semantic lookup, never the answer.
            return null;
        }
    }

    private static IEmbeddingGenerator<string, Embedding<float>> ConfiguredEmbeddings(GatewayModel gateway)
    {
        var name = gateway.Config.Cache.Semantic.Embeddings;
        return name switch
        {
            "minilm" => (IEmbeddingGenerator<string, Embedding<float>>)MiniLmEmbeddingGenerator.Shared,
            "arctic-xs" => ArcticXsEmbeddingGenerator.Shared,
            "ensemble" => EnsembleEmbeddingGenerator.Shared,
            _ => null,
        } ?? (gateway.Models[name].Primary is var deployment
            && deployment.Provider.Embeddings is { } embeddings ? embeddings(deployment.UpstreamId) : MiniLmEmbeddingGenerator.Shared);
    }

    private SemanticCache SemanticFor(int dimensions)
    {
        lock (_semanticLock)
        {
            // A reload that changes the embedding model changes the vector length: the old entries cannot be compared.
            return _semantic is { } current && current.Dimensions == dimensions
                ? current
                : _semantic = new SemanticCache(dimensions, _models.Current.Config.Cache.Semantic.MaxEntries, _time);
        }
    }

    private sealed class Plan(GatewayContext context, IReadOnlyList<ChatMessage> messages, string? exactKey)
    {
        public GatewayContext Context { get; } = context;
        public IReadOnlyList<ChatMessage> Messages { get; } = messages;
        public string? ExactKey { get; } = exactKey;
        public string? SemanticScope { get; set; }
        public string? Prompt { get; set; }
        public float[]? Vector { get; set; }
        public CachedAnswer? Hit { get; set; }
    }
}

public static class ResponseCacheChatClientBuilderExtensions
{
    /// <summary>
    /// Adds the response cache; <paramref name="store"/> null keeps the exact cache in process; <paramref name="shared"/>
    /// shares semantic entries with the other nodes of a cluster.
    /// </summary>
    public static ChatClientBuilder UseResponseCache(this ChatClientBuilder builder, GatewayModelSource models, TimeProvider time, IResponseCacheStore? store = null,
        ISharedSemanticEntries? shared = null) =>
        builder.Use(inner => new ResponseCacheChatClient(inner, models, time, store, shared: shared));
}
