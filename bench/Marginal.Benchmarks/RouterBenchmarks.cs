using BenchmarkDotNet.Attributes;
using Marginal.Core.Requests;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Embeddings;
using Marginal.Gateway.Model;
using Marginal.Gateway.Routing;
using Marginal.Gateway.Routing.Learning;
using Microsoft.Extensions.AI;

namespace Marginal.Benchmarks;

/// <summary>
/// What a routing decision costs one request, without HTTP: <see cref="ModelRoutingChatClient"/> over an upstream that
/// answers at once. <c>Explicit</c>: a configured model named directly (the baseline); <c>Policy</c>: an alias whose third
/// rule (a regex over the last user message) matches; <c>LearnedKnn</c>/<c>LearnedLogistic</c>: an alias with a learned
/// router, embedding included. The scorer rows time the score alone on a precomputed embedding, and <c>Embed</c> the
/// MiniLM embedding alone. The kNN router holds 11,229 examples, the size trained on 80% of MMLU; the matrix factorisation
/// has RouteLLM's dimension, 128.
/// </summary>
[MemoryDiagnoser]
public class RouterBenchmarks
{
    private const string Prompt = "Which of the following best describes the function of the loop of Henle in the kidney?";
    private readonly List<ChatMessage> _messages = [new(ChatRole.User, Prompt)];
    private string _directory = "";
    private ModelRoutingChatClient _router = null!;
    private KnnScorer _knn = null!;
    private LogisticScorer _logistic = null!;
    private MfScorer _mf = null!;
    private float[] _embedding = [];

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("marginal-bench-router-").FullName;
        var random = new Random(42);
        float[] RandomUnit()
        {
            var v = new float[MiniLmEmbeddingGenerator.Dimensions];
            for (var i = 0; i < v.Length; i++)
            {
                v[i] = (float)(random.NextDouble() - 0.5);
            }
            var norm = MathF.Sqrt(v.Sum(x => x * x));
            return [.. v.Select(x => x / norm)];
        }
        _knn = new KnnScorer([.. Enumerable.Range(0, 11_229).Select(_ => RandomUnit())], [.. Enumerable.Range(0, 11_229).Select(i => (float)(i % 3 - 1))], k: 100);
        _logistic = new LogisticScorer(RandomUnit(), 0);
        _mf = new MfScorer([.. Enumerable.Range(0, 128).Select(_ => (float[])[.. RandomUnit(), 0.1f])], RandomUnit()[..128], RandomUnit()[..128], RandomUnit()[..128], RandomUnit()[..128])
        {
            Length = new LengthTerm(1, 5, 1),
        };
        RouterModelFile.Save(Path.Combine(_directory, "knn.json"), _knn, new RouterModelFile.Header(0.1, "bench"));
        RouterModelFile.Save(Path.Combine(_directory, "logistic.json"), _logistic, new RouterModelFile.Header(0.5, "bench"));
        var config = ConfigLoader.Parse($$"""
            providers:
              p: { kind: openai, base_url: "http://127.0.0.1:9/v1" }
            models:
              strong: { provider: p, price: deepseek-reasoner }
              weak: { provider: p, price: deepseek-chat }
            routes:
              policy:
                strong: strong
                weak: weak
                policies:
                  - { name: tenant, tenants: [acme], model: strong }
                  - { name: long, min_prompt_chars: 20000, model: strong }
                  - { name: medicine, last_user_matches: "(?i)kidney|liver|heart", model: weak }
              knn:
                strong: strong
                weak: weak
                learned: { model: {{Path.Combine(_directory, "knn.json")}} }
              logistic:
                strong: strong
                weak: weak
                learned: { model: {{Path.Combine(_directory, "logistic.json")}} }
            """, "bench.yaml");
        _router = new ModelRoutingChatClient(new AnsweringClient(), new GatewayModelSource(GatewayModel.Build(config, TimeProvider.System)), new RouteFeedback());
        _embedding = MiniLmEmbeddingGenerator.Shared.Embed(Prompt);
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_directory, recursive: true);

    [Benchmark(Baseline = true)]
    public Task<ChatResponse> Explicit() => RouteAsync("strong");

    [Benchmark]
    public Task<ChatResponse> Policy() => RouteAsync("policy");

    [Benchmark]
    public Task<ChatResponse> LearnedKnn() => RouteAsync("knn");

    [Benchmark]
    public Task<ChatResponse> LearnedLogistic() => RouteAsync("logistic");

    [Benchmark]
    public float[] Embed() => MiniLmEmbeddingGenerator.Shared.Embed(Prompt);

    [Benchmark]
    public double KnnScoreOnly() => _knn.Score(_embedding, Prompt.Length);

    [Benchmark]
    public double LogisticScoreOnly() => _logistic.Score(_embedding, Prompt.Length);

    [Benchmark]
    public double MfScoreOnly() => _mf.Score(_embedding, Prompt.Length);

    private Task<ChatResponse> RouteAsync(string model) =>
        _router.GetResponseAsync(_messages, new ChatOptions { ModelId = model }.WithGatewayContext(new GatewayContext { RequestId = "bench" }));

    /// <summary>Answers at once with usage, as the model it was routed to.</summary>
    private sealed class AnsweringClient : IChatClient
    {
        private static readonly ChatResponse Answer = new(new ChatMessage(ChatRole.Assistant, "It concentrates the urine."))
        {
            Usage = new UsageDetails { InputTokenCount = 30, OutputTokenCount = 8, TotalTokenCount = 38 },
        };

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var context = options.GetGatewayContext()!;
            context.ServedModel = options!.ModelId;
            context.Provider = "p";
            return Task.FromResult(Answer);
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
