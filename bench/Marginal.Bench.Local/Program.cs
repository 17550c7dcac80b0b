using Marginal.Server.Composition;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using LLama;
using LLama.Common;
using LLama.Native;
using Marginal.Bench.Local;
using Marginal.Gateway.Configuration;
using Marginal.Local;
using Marginal.Local.TestModels;
using Marginal.Server.Hosting;
using Microsoft.Extensions.AI;

// Local backend throughput. Usage: nice -n -19 dotnet run -c Release --project bench/Marginal.Bench.Local -- [--tokens 128] [--threads 2] [--repeats 5]
//   [--quant-only] [--quant-models small,large,medium]
// --quant-only runs only the F16/Q8_0/Q4_0 table, for the models named by --quant-models (default small,large).
// (nice -19 as root keeps other work on a shared machine from stalling llama.cpp's threads mid-step).
// Writes its test models under bench/results/models (ignored by git) and prints Markdown tables for docs/benchmarks.md.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var tokens = Option("--tokens", 128);
var threads = Option("--threads", Environment.ProcessorCount);
var repeats = Option("--repeats", 5);
const int MaxBatch = 16;
const int SequenceContext = 256;
int[] concurrencies = [1, 2, 4, 8, 16];

var models = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../results/models"));
Directory.CreateDirectory(models);
// The sweep and the batching runs use the small test model. Quantization is also measured on a larger one
// (78M parameters, 156 MiB in F16) whose weights do not fit in the CPU's caches, as a real model's do not.
// The medium test model (162M parameters, 310 MiB in F16) is the one `marginal model make-test --size medium` writes.
var quantOnly = args.Contains("--quant-only");
var quantModels = OptionText("--quant-models", "small,large").Split(',');
var small = QuantizedSet("small", TestModelShape.Small);
var shapes = new Dictionary<string, TestModelShape>
{
    ["small"] = TestModelShape.Small,
    ["large"] = new(Embedding: 512, Layers: 8, FeedForward: 1536, Heads: 8, ContextLength: 2048),
    ["medium"] = TestModelShape.Medium,
};
var f16 = small["F16"];
var quantized = small;

Dictionary<string, string> QuantizedSet(string name, TestModelShape shape)
{
    var f16Path = Path.Combine(models, $"{name}-f16.gguf");
    if (!File.Exists(f16Path))
    {
        var writing = Stopwatch.StartNew();
        TestModelWriter.Write(f16Path, shape);
        Console.Error.WriteLine($"wrote {name} F16 in {writing.Elapsed.TotalSeconds:F1} s ({new FileInfo(f16Path).Length / 1048576.0:F1} MiB)");
    }
    var set = new Dictionary<string, string> { ["F16"] = f16Path };
    foreach (var type in new[] { "q8_0", "q4_0" })
    {
        var path = Path.Combine(models, $"{name}-{type}.gguf");
        if (!File.Exists(path))
        {
            Check(ModelQuantizer.TryParseType(type, out var ftype));
            var quantizing = Stopwatch.StartNew();
            ModelQuantizer.Quantize(f16Path, path, ftype, threads);
            Console.Error.WriteLine($"quantized {name} to {type} in {quantizing.Elapsed.TotalSeconds:F1} s ({new FileInfo(path).Length / 1048576.0:F1} MiB)");
        }
        set[type.ToUpperInvariant()] = path;
    }
    return set;
}
NativeRuntime.EnsureLoaded();
Console.WriteLine($"# Local backend, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC: {tokens} tokens per request, {threads} threads, median of {repeats}, model {Path.GetFileName(f16)} ({new FileInfo(f16).Length / 1048576.0:F1} MiB)");

var prompts = Enumerable.Range(0, MaxBatch).Select(i => (IList<ChatMessage>)[new ChatMessage(ChatRole.User, $"Benchmark request {i}: describe item {i * 13} in detail")]).ToArray();
var request = new ChatOptions { Temperature = 0, MaxOutputTokens = tokens };

// 1. Concurrency sweep: raw BatchedExecutor vs the scheduler vs the gateway, same model, same run.
if (!quantOnly)
{
using (var scheduled = new LocalChatClient(new LocalModelOptions { ModelPath = f16, MaxBatch = MaxBatch, QueueLimit = 64, Context = SequenceContext, Threads = threads }))
using (var weights = LLamaWeights.LoadFromFile(new ModelParams(f16)))
using (var raw = new RawBatchedDecode(weights, MaxBatch, SequenceContext, threads))
{
    var promptTokens = prompts.Select(p => scheduled.Tokenize(p).ToArray()).ToArray();
    var yaml = $"""
        providers:
          owned:
            kind: local
            path: {f16}
            threads: {threads}
            max_batch: {MaxBatch}
            queue_limit: 64
            context: {SequenceContext}
        models:
          small:
            provider: owned
        """;
    await using var app = MarginalServer.Create(ConfigLoader.Parse(yaml, "bench.yaml"), urls: "http://127.0.0.1:0");
    await app.StartAsync();
    using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(5) };

    async Task<TimeSpan> Scheduler(int n)
    {
        var clock = Stopwatch.StartNew();
        var responses = await Task.WhenAll(prompts.Take(n).Select(p => scheduled.GetResponseAsync(p, request)));
        Check(responses.All(r => r.Usage?.OutputTokenCount == tokens));
        return clock.Elapsed;
    }

    async Task<TimeSpan> Gateway(int n)
    {
        var clock = Stopwatch.StartNew();
        var outputs = await Task.WhenAll(Enumerable.Range(0, n).Select(async i =>
        {
            using var response = await http.PostAsJsonAsync("/v1/chat/completions", new JsonObject
            {
                ["model"] = "small",
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompts[i][0].Text }),
                ["max_tokens"] = tokens,
                ["temperature"] = 0,
            });
            response.EnsureSuccessStatusCode();
            return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["usage"]!["completion_tokens"]!.GetValue<int>();
        }));
        Check(outputs.All(o => o == tokens));
        return clock.Elapsed;
    }

    await raw.RunAsync(promptTokens.Take(2).ToArray(), 16);
    await Scheduler(2);
    await Gateway(2);
    Console.WriteLine();
    Console.WriteLine("| concurrent | raw BatchedExecutor tok/s | scheduler tok/s | gateway tok/s | scheduler / raw | gateway / raw |");
    Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: |");
    foreach (var n in concurrencies)
    {
        var s = await Interleaved(() => raw.RunAsync(promptTokens.Take(n).ToArray(), tokens), () => Scheduler(n), () => Gateway(n));
        Console.WriteLine($"| {n} | {Rate(n, s[0]):F0} | {Rate(n, s[1]):F0} | {Rate(n, s[2]):F0} | {Ratio(s[1], s[0]):F3} | {Ratio(s[2], s[0]):F3} |");
    }
}

}

// 2. Quantization: decode rate of one sequence and of 8 together, raw BatchedExecutor, per file type.
Console.WriteLine();
Console.WriteLine("| model | type | file MiB | 1 sequence tok/s | 8 sequences tok/s | 1 sequence vs F16 | 8 sequences vs F16 |");
Console.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
foreach (var name in quantModels)
{
    var set = QuantizedSet(name, shapes[name]);
    var types = set.Keys.ToArray();
    var loaded = types.Select(t => LLamaWeights.LoadFromFile(new ModelParams(set[t]))).ToArray();
    var raws = loaded.Select(w => new RawBatchedDecode(w, MaxBatch, SequenceContext, threads)).ToArray();
    using (var tokenizer = new LocalChatClient(new LocalModelOptions { ModelPath = set["F16"], MaxBatch = 1, Context = SequenceContext, Threads = threads }))
    {
        // Quantization changes weights, not the vocabulary: the F16 file's tokens serve every type.
        var promptTokens = prompts.Select(p => tokenizer.Tokenize(p).ToArray()).ToArray();
        foreach (var raw in raws)
        {
            await raw.RunAsync(promptTokens.Take(1).ToArray(), 16);
        }
        var one = await Interleaved([.. raws.Select(r => (Func<Task<TimeSpan>>)(() => r.RunAsync(promptTokens.Take(1).ToArray(), tokens)))]);
        var eight = await Interleaved([.. raws.Select(r => (Func<Task<TimeSpan>>)(() => r.RunAsync(promptTokens.Take(8).ToArray(), tokens)))]);
        for (var k = 0; k < types.Length; k++)
        {
            Console.WriteLine($"| {name} | {types[k]} | {new FileInfo(set[types[k]]).Length / 1048576.0:F1} | {Rate(1, one[k]):F0} | {Rate(8, eight[k]):F0} | {Ratio(one[k], one[0]):F2}× | {Ratio(eight[k], eight[0]):F2}× |");
        }
    }
    foreach (var raw in raws)
    {
        raw.Dispose();
    }
    foreach (var weights in loaded)
    {
        weights.Dispose();
    }
}

// 3. Continuous batching vs one at a time: 8 concurrent requests through the scheduler, max_batch 8 vs 1.
if (quantOnly)
{
    return;
}
Console.WriteLine();
Console.WriteLine("| type | 8 concurrent, max_batch 1 tok/s | 8 concurrent, max_batch 8 tok/s | batched / one at a time |");
Console.WriteLine("| --- | ---: | ---: | ---: |");
foreach (var type in new[] { "F16", "Q4_0" })
{
    using var alone = new LocalChatClient(new LocalModelOptions { ModelPath = quantized[type], MaxBatch = 1, QueueLimit = 16, Context = SequenceContext, Threads = threads });
    using var batched = new LocalChatClient(new LocalModelOptions { ModelPath = quantized[type], MaxBatch = 8, QueueLimit = 16, Context = SequenceContext, Threads = threads });
    async Task<TimeSpan> EightConcurrent(LocalChatClient client)
    {
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(prompts.Take(8).Select(p => client.GetResponseAsync(p, request)));
        return clock.Elapsed;
    }
    await alone.GetResponseAsync(prompts[0], new ChatOptions { Temperature = 0, MaxOutputTokens = 16 });
    await batched.GetResponseAsync(prompts[0], new ChatOptions { Temperature = 0, MaxOutputTokens = 16 });
    var s = await Interleaved(() => EightConcurrent(alone), () => EightConcurrent(batched));
    Console.WriteLine($"| {type} | {Rate(8, s[0]):F0} | {Rate(8, s[1]):F0} | {Ratio(s[1], s[0]):F2}× |");
}

// Runs each alternative once per repeat, in turn, so a change in the shared machine's load hits all of them alike.
// Returns seconds per alternative per repeat.
async Task<double[][]> Interleaved(params Func<Task<TimeSpan>>[] runs)
{
    var seconds = runs.Select(_ => new double[repeats]).ToArray();
    for (var r = 0; r < repeats; r++)
    {
        for (var k = 0; k < runs.Length; k++)
        {
            seconds[k][r] = (await runs[k]()).TotalSeconds;
        }
    }
    return seconds;
}

// Median aggregate tokens/s of n requests of `tokens` tokens each.
double Rate(int n, double[] seconds) => n * tokens / Median(seconds);

// Median over repeats of (rate of a) / (rate of b), each repeat's pair measured back to back.
static double Ratio(double[] a, double[] b) => Median(a.Zip(b, (x, y) => y / x));

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted[sorted.Length / 2];
}

static void Check(bool ok)
{
    if (!ok)
    {
        throw new InvalidOperationException("a check failed: a request did not return the asked number of tokens, or a quantization type is unknown");
    }
}

string OptionText(string name, string fallback)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
}

int Option(string name, int fallback)
{
    var at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length && int.TryParse(args[at + 1], CultureInfo.InvariantCulture, out var value) ? value : fallback;
}
