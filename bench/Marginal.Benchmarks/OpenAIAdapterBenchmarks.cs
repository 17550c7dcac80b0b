using System.ClientModel;
using System.ClientModel.Primitives;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Marginal.Bench.Stub;
using Marginal.Gateway.Providers.OpenAI;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Server.Wire;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Marginal.Benchmarks;

/// <summary>
/// What the provider adapter costs per call, with the network taken out: the official OpenAI SDK behind
/// Microsoft.Extensions.AI.OpenAI (what Marginal's openai provider uses for requests the wire reader cannot express)
/// against <see cref="OpenAIChatStream"/> (what it uses for plain text requests, streamed or not), both over the same
/// in-memory upstream that returns the load-test stub's bytes. The difference is the SDK's CPU and allocation overhead
/// per request.
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
        _stream = new OpenAIChatStream(_http, Endpoint, "no-key", "bench", TimeSpan.FromSeconds(30), TimeProvider.System);
        // The gateway hands the provider what the request reader made of the client's body.
        (_messages, _options) = ChatRequestReader.ToChat(ChatRequestReader.Read(SampleRequests.Small));

        // Every path must understand the stub's answers, or the comparison means nothing.
        Check("SDK", _sdk.GetResponseAsync(_messages, _options).GetAwaiter().GetResult());
        Check("SDK stream", _sdk.GetStreamingResponseAsync(_messages, _options).ToChatResponseAsync().GetAwaiter().GetResult());
        Check("OpenAIChatStream.CompleteAsync", _stream.CompleteAsync(_messages, _options, CancellationToken.None).GetAwaiter().GetResult());
        Check("OpenAIChatStream.StreamAsync", _stream.StreamAsync(_messages, _options, CancellationToken.None).ToChatResponseAsync().GetAwaiter().GetResult());
    }

    private static void Check(string path, ChatResponse response)
    {
        if (response.Text != StubResponses.Answer || response.Usage?.OutputTokenCount != StubResponses.CompletionTokens)
        {
            throw new InvalidOperationException($"{path} misread the stub's answer: '{response.Text}'");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _http.Dispose();
        _upstream.Dispose();
    }

    [Benchmark(Baseline = true, Description = "Marginal's OpenAIChatStream.CompleteAsync (served path)")]
    [BenchmarkCategory("non-streamed")]
    public async Task<int> ServedComplete() => (await _stream.CompleteAsync(_messages, _options, CancellationToken.None)).Text.Length;

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
