using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Server.Wire;
using Microsoft.Extensions.AI;

namespace Marginal.Benchmarks;

/// <summary>
/// The first thing every request pays: body bytes → wire request → Microsoft.Extensions.AI messages and options.
/// Baseline: parsing the same bytes into a <see cref="JsonDocument"/>, the least any JSON gateway must do.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class ChatRequestParsingBenchmarks
{
    private byte[] _body = [];

    /// <summary><c>small</c>: system + user (≈0.4 KB); <c>large</c>: 10 messages, tool calls, 4 tools (≈4.4 KB).</summary>
    [Params("small", "large")]
    public string Request { get; set; } = "small";

    [GlobalSetup]
    public void Setup()
    {
        _body = Request == "small" ? SampleRequests.Small : SampleRequests.Large;
        // Fail fast if a sample stops being a valid request.
        _ = ChatRequestReader.ToChat(ChatRequestReader.Read(_body));
    }

    [Benchmark(Baseline = true, Description = "JsonSerializer.Deserialize<JsonDocument>")]
    public JsonValueKind ParseJsonDocument()
    {
        using var document = JsonSerializer.Deserialize<JsonDocument>(_body)!;
        return document.RootElement.ValueKind;
    }

    [Benchmark(Description = "ChatRequestReader.Read")]
    public ChatCompletionRequest Read() => ChatRequestReader.Read(_body);

    [Benchmark(Description = "Read + ToChat")]
    public (List<ChatMessage> Messages, ChatOptions Options) ReadAndConvert() =>
        ChatRequestReader.ToChat(ChatRequestReader.Read(_body));
}
