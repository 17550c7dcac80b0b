using System.ClientModel;
using System.ClientModel.Primitives;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Marginal.Bench.Stub;
using Marginal.Gateway.Providers.OpenAI;
using Marginal.Server.Wire;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Marginal.Benchmarks;

/// <summary>
/// What the provider adapter costs per call, with the network taken out: the official OpenAI SDK behind
/// Microsoft.Extensions.AI.OpenAI (what Marginal's openai provider uses) against <see cref="LeanOpenAIChatClient"/>,
/// both over the same in-memory upstream that returns the load-test stub's bytes. The difference is the SDK's
/// CPU and allocation overhead per request — the figure that decides whether a lean adapter is worth writing.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class OpenAIAdapterBenchmarks
{
    private static readonly Uri Endpoint = new("http://127.0.0.1:9/v1");

    private InMemoryUpstream _upstream = null!;
    private HttpClient _http = null!;
    private IChatClient _sdk = null!;
    // Called through IChatClient, as the gateway calls every provider.
#pragma warning disable CA1859
    private IChatClient _lean = null!;
#pragma warning restore CA1859
    private OpenAIChatStream _stream = null!;
    private List<ChatMessage> _messages = [];
    private ChatOptions _options = new();

    [GlobalSetup]
    public void Setup()
    {
        _upstream = new InMemoryUpstream();
        _http = new HttpClient(_upstream, disposeHandler: false);
        // Built the way Marginal's OpenAIProvider builds it: the SDK over our HttpClient, no SDK retries.
        var client = new OpenAIClient(new ApiKeyCredential("no-key"), new OpenAIClientOptions
        {
            Endpoint = Endpoint,
            Transport = new HttpClientPipelineTransport(_http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
        _sdk = client.GetChatClient("default").AsIChatClient();
        _lean = new LeanOpenAIChatClient(_http, Endpoint);
        _stream = new OpenAIChatStream(_http, Endpoint, "no-key", "bench", TimeSpan.FromSeconds(30), TimeProvider.System);
        // The gateway hands the provider what the request reader made of the client's body.
        (_messages, _options) = ChatRequestReader.ToChat(ChatRequestReader.Read(SampleRequests.Small));

        // Both adapters must understand the stub's answers, or the comparison means nothing.
        foreach (var chat in new[] { _sdk, _lean })
        {
            var response = chat.GetResponseAsync(_messages, _options).GetAwaiter().GetResult();
            if (response.Text != StubResponses.Answer || response.Usage?.OutputTokenCount != StubResponses.CompletionTokens)
            {
                throw new InvalidOperationException($"{chat.GetType().Name} misread the completion: '{response.Text}'");
            }
            if (chat == _lean)
            {
                continue;
            }
            var streamed = chat.GetStreamingResponseAsync(_messages, _options).ToChatResponseAsync().GetAwaiter().GetResult();
            if (streamed.Text != StubResponses.Answer || streamed.Usage?.OutputTokenCount != StubResponses.CompletionTokens)
            {
                throw new InvalidOperationException($"{chat.GetType().Name} misread the stream: '{streamed.Text}' {LeanOpenAIChatClient.Describe(_upstream.LastRequest)}");
            }
        }

        var read = _stream.StreamAsync(_messages, _options, CancellationToken.None).ToChatResponseAsync().GetAwaiter().GetResult();
        if (read.Text != StubResponses.Answer || read.Usage?.OutputTokenCount != StubResponses.CompletionTokens)
        {
            throw new InvalidOperationException($"OpenAIChatStream misread the stream: '{read.Text}'");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _http.Dispose();
        _upstream.Dispose();
    }

    [Benchmark(Baseline = true, Description = "lean HttpClient adapter")]
    [BenchmarkCategory("non-streamed")]
    public async Task<int> LeanComplete() => (await _lean.GetResponseAsync(_messages, _options)).Text.Length;

    [Benchmark(Description = "OpenAI SDK + M.E.AI.OpenAI")]
    [BenchmarkCategory("non-streamed")]
    public async Task<int> SdkComplete() => (await _sdk.GetResponseAsync(_messages, _options)).Text.Length;

    [Benchmark(Description = "OpenAI SDK + M.E.AI.OpenAI")]
    [BenchmarkCategory("streamed (44 events + [DONE])")]
    public Task<int> SdkStream() => CountAsync(_sdk);

    [Benchmark(Baseline = true, Description = "Marginal's OpenAIChatStream (served path)")]
    [BenchmarkCategory("streamed (44 events + [DONE])")]
    public async Task<int> ServedStream()
    {
        var count = 0;
        await foreach (var update in _stream.StreamAsync(_messages, _options, CancellationToken.None))
        {
            count += update.Contents.Count;
        }
        return count;
    }

    private async Task<int> CountAsync(IChatClient chat)
    {
        var count = 0;
        await foreach (var update in chat.GetStreamingResponseAsync(_messages, _options))
        {
            count += update.Contents.Count;
        }
        return count;
    }
}
