using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Marginal.Storage.Sqlite;
using Xunit.Abstractions;

namespace Marginal.Cli.Tests.Commands;

/// <summary>
/// A record counts as billed once it is durable, and the gateway answers only after that. So when the server is killed
/// (SIGKILL, no shutdown code runs) in the middle of a load, every request the clients saw succeed is in the ledger, and
/// a retry of one with the same Idempotency-Key on a restarted server is answered but not billed again.
/// </summary>
public sealed class CrashSafetyTests(ITestOutputHelper output) : UpstreamWorkspace("none", recordRequests: false)
{
    /// <summary>The bound of answered-but-uncommitted records in the queued-acknowledgement test.</summary>
    private const int MaxUnrecorded = 16;

    private static HttpRequestMessage Chat(string key, bool stream) => new(HttpMethod.Post, "/v1/chat/completions")
    {
        Headers = { { "Idempotency-Key", key } },
        Content = new StringContent($$"""{"model":"deepseek-chat","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"request {{key}}"}]}""", Encoding.UTF8, "application/json"),
    };

    /// <summary>True when the whole answer arrived: a JSON body, or a stream through <c>[DONE]</c>.</summary>
    private static async Task<bool> SucceededAsync(HttpResponseMessage response, bool stream) =>
        response.StatusCode == HttpStatusCode.OK && (!stream || (await response.Content.ReadAsStringAsync()).EndsWith("data: [DONE]\n\n", StringComparison.Ordinal));

    [Fact]
    public async Task Serve_KilledMidLoad_EveryAcknowledgedRequestRecordedOnceAndRetriesNotBilledAgain()
    {
        var (acknowledged, sent) = await KillMidLoadAsync();

        await using (var ledger = SqliteStore.Open(Path.Combine(WorkDir, "marginal.db")))
        {
            foreach (var key in acknowledged)
            {
                Assert.NotNull(await ledger.FindAsync($"default:{key}"));
            }
            Assert.InRange(await ledger.CountAsync(), acknowledged.Count, sent);
        }

        var (restarted, retryHttp) = await MarginalProcess.ServeAsync(WorkDir, ConfigPath);
        try
        {
            // Keys with an even number were sent as JSON: retried the same way, they are answered and not billed again.
            var retried = acknowledged.Where(key => !Streamed(key)).Take(20).ToList();
            foreach (var key in retried)
            {
                using var response = await retryHttp.SendAsync(Chat(key, stream: false));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal("true", response.Headers.GetValues("x-marginal-duplicate").Single());
            }
            // A key first answered as a stream belongs to that body: sent as JSON it is another request.
            using var asJson = await retryHttp.SendAsync(Chat(acknowledged.First(Streamed), stream: false));
            Assert.Equal(HttpStatusCode.UnprocessableEntity, asJson.StatusCode);
        }
        finally
        {
            restarted.Kill();
            await restarted.WaitForExitAsync();
            retryHttp.Dispose();
        }
    }

    /// <summary>
    /// With <c>storage.acknowledge: queued</c> a request is answered once its record is queued, so a kill may lose
    /// answered records, but never more than <c>storage.max_unrecorded</c>, and none is recorded twice.
    /// </summary>
    [Fact]
    public async Task Serve_QueuedAcknowledgementKilledMidLoad_LosesAtMostTheBoundAndNothingTwice()
    {
        await File.AppendAllTextAsync(ConfigPath, $"\nstorage:\n  acknowledge: queued\n  max_unrecorded: {MaxUnrecorded}\n");
        var (acknowledged, sent) = await KillMidLoadAsync();

        await using var ledger = SqliteStore.Open(Path.Combine(WorkDir, "marginal.db"));
        var missing = 0;
        foreach (var key in acknowledged)
        {
            if (await ledger.FindAsync($"default:{key}") is null)
            {
                missing++;
            }
        }
        output.WriteLine($"queued acknowledgement: {acknowledged.Count} answered, {missing} of them missing after the kill (bound {MaxUnrecorded}), {sent} sent");
        Assert.InRange(missing, 0, MaxUnrecorded);
        // Ids are unique in the ledger, so nothing is there twice; what is there was sent.
        Assert.InRange(await ledger.CountAsync(), acknowledged.Count - missing, sent);
    }

    /// <summary>Whether the load sent <paramref name="key"/> (<c>c{client}-{i}</c>) as a stream: odd <c>i</c>.</summary>
    private static bool Streamed(string key) => int.Parse(key[(key.IndexOf('-', StringComparison.Ordinal) + 1)..], System.Globalization.CultureInfo.InvariantCulture) % 2 == 1;

    /// <summary>Eight clients load the server with alternately plain and streamed requests; kills it after 200 successes.</summary>
    private async Task<(List<string> Acknowledged, int Sent)> KillMidLoadAsync()
    {
        var (server, http) = await MarginalProcess.ServeAsync(WorkDir, ConfigPath);
        var acknowledged = new ConcurrentBag<string>();
        var sent = 0;
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 8).Select(client => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var key = $"c{client}-{i}";
                var stream = i % 2 == 1;
                Interlocked.Increment(ref sent);
                try
                {
                    using var response = await http.SendAsync(Chat(key, stream));
                    if (await SucceededAsync(response, stream))
                    {
                        acknowledged.Add(key);
                    }
                }
                catch (Exception error) when (error is HttpRequestException or IOException or TaskCanceledException)
                {
                    // The server died under this request: the client saw no success, so it may or may not be billed.
                }
            }
        })).ToArray();

        while (acknowledged.Count < 200)
        {
            await Task.Delay(20);
        }
        server.Kill();
        await server.WaitForExitAsync();
        await stop.CancelAsync();
        await Task.WhenAll(clients);
        http.Dispose();
        return ([.. acknowledged], sent);
    }
}
