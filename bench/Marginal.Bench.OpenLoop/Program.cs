// Open-loop, fixed-rate load client (bench/load.sh --rates). Request i is due at start + i / rate and leaves at its
// due time whether or not earlier requests have been answered, over a pool of up to --connections HTTP/1.1
// connections. Its latency counts from the due time, not from when it was sent: a server that stalls makes every
// request due during the stall late, as a real client population would see it, instead of slowing the client down
// and hiding the stall (the "coordinated omission" of closed-loop tools such as wrk and hey). The sender's own lag
// (how late it sent) is reported too: when it is large the client, not the server, was the limit.
//
// Usage: Marginal.Bench.OpenLoop --url U --body FILE --rate R --duration S [--warmup S] [--connections N]
//                                [--header "Name: value"]...
// Prints one line: RESULT requests=.. rps=.. p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. errors=..
//                  send_lag_p99_us=.. send_lag_max_us=..
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using HdrHistogram;

string? url = null, bodyPath = null;
double rate = 0, duration = 10, warmup = 2;
var connections = 256;
var headers = new List<(string, string)>();
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw Usage($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--url": url = Next(); break;
        case "--body": bodyPath = Next(); break;
        case "--rate": rate = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--duration": duration = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--warmup": warmup = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--connections": connections = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--header":
            var header = Next();
            var colon = header.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw Usage($"--header '{header}' is not 'Name: value'");
            }
            headers.Add((header[..colon].Trim(), header[(colon + 1)..].Trim()));
            break;
        default: throw Usage($"unknown argument '{args[i]}'");
    }
}
if (url is null || bodyPath is null || rate <= 0 || duration <= 0 || warmup < 0 || connections <= 0)
{
    throw Usage("--url, --body, a positive --rate and --duration are required");
}

var body = File.ReadAllBytes(bodyPath);
ThreadPool.SetMinThreads(Math.Max(8, Environment.ProcessorCount * 4), 8);
using var client = new HttpClient(new SocketsHttpHandler
{
    MaxConnectionsPerServer = connections,
    UseProxy = false,
    PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
    AutomaticDecompression = System.Net.DecompressionMethods.None,
})
{ Timeout = TimeSpan.FromSeconds(30) };

// Microseconds from 1 µs to 60 s at 3 significant digits.
var latency = new LongHistogram(60_000_000, 3);
var lag = new LongHistogram(60_000_000, 3);
var gate = new Lock();
long errors = 0, completed = 0, inFlight = 0;
var allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
var ticksPerMicro = Stopwatch.Frequency / 1e6;

var warmupCount = (long)(warmup * rate);
var total = warmupCount + (long)(duration * rate);
var ticksPerRequest = Stopwatch.Frequency / rate;
var start = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 10;
long measuredStart = start + (long)(warmupCount * ticksPerRequest), measuredEnd = 0;

var sender = new Thread(() =>
{
    for (long n = 0; n < total; n++)
    {
        var due = start + (long)(n * ticksPerRequest);
        while (true)
        {
            var remaining = due - Stopwatch.GetTimestamp();
            if (remaining <= 0)
            {
                break;
            }
            // Sleep while the due time is far; yield (so answers are read on this core) when it is near.
            if (remaining > 2 * Stopwatch.Frequency / 1000)
            {
                Thread.Sleep(1);
            }
            else
            {
                Thread.Yield();
            }
        }
        var measured = n >= warmupCount;
        if (measured)
        {
            var late = (long)((Stopwatch.GetTimestamp() - due) / ticksPerMicro);
            lock (gate)
            {
                lag.RecordValue(Math.Clamp(late, 0, 60_000_000));
            }
        }
        Interlocked.Increment(ref inFlight);
        _ = SendAsync(due, measured);
    }
    if (Interlocked.Decrement(ref inFlight) == -1)
    {
        allDone.TrySetResult();
    }
})
{ IsBackground = true, Name = "open-loop sender", Priority = ThreadPriority.AboveNormal };
// inFlight starts at 0; the sender's final decrement and each request's decrement meet at -1 exactly once.
sender.Start();

async Task SendAsync(long due, bool measured)
{
    var ok = false;
    try
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await response.Content.CopyToAsync(Stream.Null);
        ok = response.IsSuccessStatusCode;
    }
    catch (Exception error) when (error is HttpRequestException or TaskCanceledException or IOException)
    {
    }
    var end = Stopwatch.GetTimestamp();
    if (measured)
    {
        var micros = (long)((end - due) / ticksPerMicro);
        lock (gate)
        {
            if (ok)
            {
                latency.RecordValue(Math.Clamp(micros, 1, 60_000_000));
                completed++;
            }
            else
            {
                errors++;
            }
            measuredEnd = Math.Max(measuredEnd, end);
        }
    }
    if (Interlocked.Decrement(ref inFlight) == -1)
    {
        allDone.TrySetResult();
    }
}

await allDone.Task.WaitAsync(TimeSpan.FromSeconds(duration + warmup + 60));
var seconds = Math.Max(duration, (measuredEnd - measuredStart) / (double)Stopwatch.Frequency);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"RESULT requests={completed} rps={completed / seconds:0.0} target_rps={rate:0.0} p50_us={latency.GetValueAtPercentile(50)} p90_us={latency.GetValueAtPercentile(90)} p99_us={latency.GetValueAtPercentile(99)} p999_us={latency.GetValueAtPercentile(99.9)} max_us={latency.GetMaxValue()} errors={errors} send_lag_p99_us={lag.GetValueAtPercentile(99)} send_lag_max_us={lag.GetMaxValue()}"));
return 0;

static ArgumentException Usage(string message) =>
    new($"Marginal.Bench.OpenLoop: {message}. Usage: --url U --body FILE --rate R --duration S [--warmup S] [--connections N] [--header 'Name: value']...");
