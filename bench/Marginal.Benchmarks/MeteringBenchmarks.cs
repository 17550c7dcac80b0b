using BenchmarkDotNet.Attributes;
using Marginal.Core.Ledger;
using Marginal.Core.Requests;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Metering;
using Marginal.Gateway.Model;
using Marginal.Storage.Sqlite;
using Microsoft.Extensions.AI;

namespace Marginal.Benchmarks;

/// <summary>
/// What metering adds to one non-streamed request, without HTTP: <see cref="MeteringChatClient"/> over an upstream that
/// answers at once with usage. <c>PricedOnly</c>: priced, nothing recorded (the baseline); <c>Recorded</c>: also
/// recorded into SQLite and awaited until durable, as the gateway does by default; <c>Queued</c>: recorded with
/// <c>storage.acknowledge: queued</c> (answered once queued, at most 256 uncommitted). <see cref="Concurrency"/>
/// requests run at a time, so with more than one, records share commits. Times are per request.
/// </summary>
[MemoryDiagnoser]
public class MeteringBenchmarks
{
    private const int Requests = 1024;
    private string _directory = "";
    private SqliteStore _store = null!;
    private LedgerWriter _writer = null!;
    private LedgerWriter _queuedWriter = null!;
    private MeteringChatClient _priced = null!;
    private MeteringChatClient _recorded = null!;
    private MeteringChatClient _queued = null!;
    private readonly List<ChatMessage> _messages = [new(ChatRole.User, "What does a token cost?")];

    [Params(1, 16)]
    public int Concurrency { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("marginal-bench-metering-").FullName;
        _store = SqliteStore.Open(Path.Combine(_directory, "ledger.db"));
        _writer = new LedgerWriter(_store);
        _queuedWriter = new LedgerWriter(_store, maxUnrecorded: 256);
        var config = ConfigLoader.Parse("providers:\n  p:\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\nmodels:\n  m:\n    provider: p\n    price: deepseek-chat\n", "bench.yaml");
        var models = new GatewayModelSource(GatewayModel.Build(config, TimeProvider.System));
        _priced = new MeteringChatClient(new AnsweringClient(), models, null, TimeProvider.System);
        _recorded = new MeteringChatClient(new AnsweringClient(), models, _writer, TimeProvider.System);
        _queued = new MeteringChatClient(new AnsweringClient(), models, _queuedWriter, TimeProvider.System);
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _writer.DisposeAsync();
        await _queuedWriter.DisposeAsync();
        await _store.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Requests)]
    public Task PricedOnly() => RunAsync(_priced);

    [Benchmark(OperationsPerInvoke = Requests)]
    public Task Recorded() => RunAsync(_recorded);

    [Benchmark(OperationsPerInvoke = Requests)]
    public Task Queued() => RunAsync(_queued);

    private Task RunAsync(MeteringChatClient client) => Task.WhenAll(Enumerable.Range(0, Concurrency).Select(_ => Task.Run(async () =>
    {
        for (var i = 0; i < Requests / Concurrency; i++)
        {
            var context = new GatewayContext { RequestId = "req_" + Guid.CreateVersion7().ToString("N"), RequestedModel = "m" };
            await client.GetResponseAsync(_messages, new ChatOptions { ModelId = "m" }.WithGatewayContext(context));
        }
    })));

    /// <summary>An upstream that answers at once, with usage, as the capacity stage would after a provider call.</summary>
    private sealed class AnsweringClient : IChatClient
    {
        private static readonly ChatResponse Answer = new(new ChatMessage(ChatRole.Assistant, "About a millionth of a dollar."))
        {
            Usage = new UsageDetails { InputTokenCount = 12, OutputTokenCount = 8, TotalTokenCount = 20 },
        };

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var context = options.GetGatewayContext()!;
            context.ServedModel = "m";
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
