using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using Marginal.Core.Requests;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Embeddings;
using Marginal.Gateway.Model;
using Microsoft.Extensions.AI;

namespace Marginal.Benchmarks;

/// <summary>
/// The response cache's lookups. <c>ExactHit</c>: a whole exact hit through <see cref="ResponseCacheChatClient"/> (key
/// hash over model, messages and options, store read, context filled). <c>SemanticSearch</c>: the exact SIMD scan of
/// <see cref="VectorIndex"/> over <see cref="Entries"/> random unit vectors of 384 dimensions, without embedding;
/// <c>SemanticWithEmbedding</c>: the same after embedding the prompt with MiniLM. <c>Embed*</c>: the embedding alone
/// with each in-process model the semantic cache can use (<c>cache.semantic.embeddings</c>); they do not depend on
/// <see cref="Entries"/>. <c>EmbedTokensMiniLm</c>: MiniLM's token vectors of the prompt (<see cref="MiniLmTokenEncoder"/>);
/// <c>AlignPair</c>: the token alignment of the prompt with a cached paraphrase (<see cref="TokenAlignment"/>).
/// </summary>
[Config(typeof(PercentileConfig))]
public class ResponseCacheBenchmarks
{
    private readonly List<ChatMessage> _messages = [new(ChatRole.System, "You are a helpful assistant."), new(ChatRole.User, "What does a token cost on the margin?")];
    private ResponseCacheChatClient _cache = null!;
    private VectorIndex _index = null!;
    private float[] _query = [];
    private TokenVectors _promptTokens = null!;
    private TokenVectors _cachedTokens = null!;

    [Params(10_000, 100_000)]
    public int Entries { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var config = ConfigLoader.Parse("providers:\n  p:\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\nmodels:\n  m:\n    provider: p\n", "bench.yaml");
        var models = new GatewayModelSource(GatewayModel.Build(config, TimeProvider.System));
        _cache = new ResponseCacheChatClient(new AnsweringClient(), models, TimeProvider.System);
        _cache.GetResponseAsync(_messages, Options()).GetAwaiter().GetResult();
        var random = new Random(42);
        _index = new VectorIndex(MiniLmEmbeddingGenerator.Dimensions);
        var vector = new float[MiniLmEmbeddingGenerator.Dimensions];
        for (var i = 0; i < Entries; i++)
        {
            for (var d = 0; d < vector.Length; d++)
            {
                vector[d] = (float)(random.NextDouble() - 0.5);
            }
            VectorIndex.Normalise(vector);
            _index.Add(i, vector);
        }
        _query = MiniLmEmbeddingGenerator.Shared.Embed("What does a token cost on the margin?");
        var tokens = MiniLmTokenEncoder.Shared.Encode([Prompt, CachedPrompt]);
        (_promptTokens, _cachedTokens) = (tokens[0], tokens[1]);
    }

    private static ChatOptions Options() => new ChatOptions { ModelId = "m", Temperature = 0 }.WithGatewayContext(new GatewayContext { Tenant = "bench" });

    [Benchmark]
    public Task<ChatResponse> ExactHit() => _cache.GetResponseAsync(_messages, Options());

    [Benchmark]
    public (long, float)? SemanticSearch() => _index.Nearest(_query);

    [Benchmark]
    public (long, float)? SemanticWithEmbedding() => _index.Nearest(MiniLmEmbeddingGenerator.Shared.Embed("What does a token cost on the margin?"));

    private const string Prompt = "What does a token cost on the margin?";

    /// <summary>A cached paraphrase of <see cref="Prompt"/> for <c>AlignPair</c>.</summary>
    private const string CachedPrompt = "How much does one more token cost to serve?";

    [Benchmark]
    public float[] EmbedMiniLm() => MiniLmEmbeddingGenerator.Shared.Embed(Prompt);

    [Benchmark]
    public float[] EmbedArcticXs() => ArcticXsEmbeddingGenerator.Shared.Embed(Prompt);

    [Benchmark]
    public float[] EmbedEnsemble() => EnsembleEmbeddingGenerator.Shared.Embed(Prompt);

    [Benchmark]
    public TokenVectors EmbedTokensMiniLm() => MiniLmTokenEncoder.Shared.Encode([Prompt])[0];

    [Benchmark]
    public AlignmentScore AlignPair() => TokenAlignment.Score(_promptTokens, _cachedTokens);

    private sealed class AnsweringClient : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "About a tenth of a cent per thousand.")));

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    private sealed class PercentileConfig : ManualConfig
    {
        public PercentileConfig() => AddColumn(StatisticColumn.P50, StatisticColumn.P95, StatisticColumn.Max);
    }
}
