using Marginal.Core.Errors;
using Marginal.Local.Scheduling;
using Microsoft.Extensions.AI;

namespace Marginal.Local.Tests.Scheduling;

[Collection(LocalModelCollection.Name)]
public sealed class BatchSchedulerTests(TestModelFiles files)
{
    private static readonly ChatOptions Greedy = new() { Temperature = 0, MaxOutputTokens = 12 };

    private LocalChatClient Load(int maxBatch, int queueLimit = 8, int context = 128) =>
        new(new LocalModelOptions { ModelPath = files.Path, MaxBatch = maxBatch, QueueLimit = queueLimit, Context = context, Threads = 2 });

    private static List<ChatMessage> Ask(string text) => [new ChatMessage(ChatRole.User, text)];

    /// <summary>Starts a stream and waits for its first text, so the sequence is known to be in the running batch.</summary>
    private static async Task<IAsyncEnumerator<ChatResponseUpdate>> StartRunningAsync(LocalChatClient client, int maxTokens, CancellationToken cancellationToken)
    {
        var stream = client.GetStreamingResponseAsync(Ask("a long answer please"), new ChatOptions { Temperature = 0, MaxOutputTokens = maxTokens }, cancellationToken)
            .GetAsyncEnumerator(cancellationToken);
        Assert.True(await stream.MoveNextAsync());
        return stream;
    }

    [Fact]
    public async Task GetResponse_SixteenConcurrent_EachEqualsItsAnswerAlone()
    {
        using var client = Load(maxBatch: 16);
        var prompts = Enumerable.Range(0, 16).Select(i => $"Request {i}: write about subject {i * 37}").ToArray();
        var alone = new List<string>();
        foreach (var prompt in prompts)
        {
            alone.Add((await client.GetResponseAsync(Ask(prompt), Greedy)).Text);
        }
        var before = client.Scheduler.GetStats();

        var together = await Task.WhenAll(prompts.Select(p => client.GetResponseAsync(Ask(p), Greedy)));

        Assert.Equal(alone, together.Select(r => r.Text));
        // The answers differ from each other, so equality above is not a model that ignores its prompt.
        Assert.True(alone.Distinct().Count() >= 12, string.Join(" | ", alone));
        var after = client.Scheduler.GetStats();
        var meanBatch = (double)(after.SequenceSteps - before.SequenceSteps) / (after.Steps - before.Steps);
        Assert.True(meanBatch > 8, $"the sixteen ran {meanBatch:F1} to a step: not batched");
    }

    [Fact]
    public async Task GetResponse_ConcurrentRequests_BusySharesAddUpToBusyTime()
    {
        using var client = Load(maxBatch: 4);
        var before = client.Scheduler.GetStats();

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(i =>
            client.GetResponseAsync(Ask($"share {i}"), new ChatOptions { Temperature = 0, MaxOutputTokens = 4 + i * 3 })));

        var busy = client.Scheduler.GetStats().BusyTime - before.BusyTime;
        var shares = responses.Sum(r => r.Usage!.AdditionalCounts![LocalChatClient.BusyTicksKey]);
        // Σ shares = busy time, to the rounding of each share to a whole tick.
        Assert.InRange(shares, busy.Ticks - responses.Length, busy.Ticks + responses.Length);
        Assert.All(responses, r => Assert.True(r.Usage!.AdditionalCounts![LocalChatClient.BusyTicksKey] > 0));
    }

    [Fact]
    public async Task GetResponse_FullBatch_LaterRequestMarkedQueued()
    {
        using var client = Load(maxBatch: 1);
        using var cancel = new CancellationTokenSource();
        var running = await StartRunningAsync(client, 100, cancel.Token);

        var waiting = client.GetResponseAsync(Ask("behind"), Greedy);
        await Task.Delay(50);
        await cancel.CancelAsync();
        await running.DisposeAsync();
        var response = await waiting;
        var alone = await client.GetResponseAsync(Ask("alone"), Greedy);

        Assert.Equal(1, response.Usage!.AdditionalCounts![LocalChatClient.QueuedKey]);
        Assert.Equal(0, alone.Usage!.AdditionalCounts![LocalChatClient.QueuedKey]);
    }

    [Fact]
    public async Task GetResponse_NextRequestSentAsTheLastEnds_NeverMarkedQueued()
    {
        // One slot, one client: each request is sent the moment the previous answer's last update arrives, so it never
        // waits for anything; none may be flagged queued (a queued request is charged its full cost as marginal).
        using var client = Load(maxBatch: 1);
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 2 };
        var queued = 0;
        for (var i = 0; i < 60; i++)
        {
            await foreach (var update in client.GetStreamingResponseAsync(Ask($"next {i}"), options))
            {
                foreach (var content in update.Contents)
                {
                    if (content is UsageContent { Details.AdditionalCounts: { } counts } && counts[LocalChatClient.QueuedKey] != 0)
                    {
                        queued++;
                    }
                }
            }
        }

        Assert.Equal(0, queued);
    }

    [Fact]
    public async Task GetResponse_Usage_ExactFromModelTokenizer()
    {
        using var client = Load(maxBatch: 2);
        var messages = Ask("count my tokens");

        var response = await client.GetResponseAsync(messages, Greedy);

        Assert.Equal(client.Tokenize(messages).Count, response.Usage!.InputTokenCount);
        Assert.Equal(12, response.Usage.OutputTokenCount);
        Assert.Equal(response.Usage.InputTokenCount + 12, response.Usage.TotalTokenCount);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
    }

    [Fact]
    public async Task Cancel_RunningSequence_FreesItsSlotForTheNext()
    {
        using var client = Load(maxBatch: 1, context: 2048);
        using var cancel = new CancellationTokenSource();
        var running = await StartRunningAsync(client, maxTokens: 2000, cancel.Token);

        await cancel.CancelAsync();
        var next = await client.GetResponseAsync(Ask("next"), Greedy);

        Assert.Equal(12, next.Usage!.OutputTokenCount);
        var stats = client.Scheduler.GetStats();
        Assert.Equal(1, stats.Cancelled);
        Assert.True(stats.GeneratedTokens < 500, $"the cancelled sequence went on decoding: {stats.GeneratedTokens} tokens");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await running.MoveNextAsync());
        await running.DisposeAsync();
    }

    [Fact]
    public async Task Cancel_QueuedSequence_LeavesQueueAtOnce()
    {
        using var client = Load(maxBatch: 1, queueLimit: 1, context: 2048);
        using var first = new CancellationTokenSource();
        using var second = new CancellationTokenSource();
        var running = await StartRunningAsync(client, maxTokens: 2000, first.Token);
        var queued = client.GetResponseAsync(Ask("waiting"), Greedy, second.Token);
        Assert.Equal(1, client.Scheduler.GetStats().QueueDepth);

        await second.CancelAsync();

        Assert.Equal(0, client.Scheduler.GetStats().QueueDepth);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        await first.CancelAsync();
        await running.DisposeAsync();
    }

    [Fact]
    public async Task Submit_QueueFull_Throws429WithRetryAfter()
    {
        using var client = Load(maxBatch: 1, queueLimit: 1, context: 2048);
        using var cancel = new CancellationTokenSource();
        var running = await StartRunningAsync(client, maxTokens: 2000, cancel.Token);
        var queued = client.GetResponseAsync(Ask("waiting"), Greedy, cancel.Token);

        var error = await Assert.ThrowsAsync<GatewayException>(() => client.GetResponseAsync(Ask("one too many"), Greedy));

        Assert.Equal(GatewayErrorKind.RateLimited, error.Kind);
        Assert.NotNull(error.RetryAfter);
        Assert.True(error.RetryAfter >= TimeSpan.FromSeconds(1));
        Assert.Equal(1, client.Scheduler.GetStats().Rejected);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        await running.DisposeAsync();
    }

    [Fact]
    public async Task Submit_PromptPlusMaxTokensOverContext_InvalidRequest()
    {
        using var client = Load(maxBatch: 1, context: 32);

        var error = await Assert.ThrowsAsync<GatewayException>(() => client.GetResponseAsync(Ask("hello"), new ChatOptions { MaxOutputTokens = 100 }));

        Assert.Equal(GatewayErrorKind.InvalidRequest, error.Kind);
        Assert.Equal("context_length_exceeded", error.Code);
    }

    [Fact]
    public async Task GetStats_AfterConcurrentRequests_ReportsUtilisation()
    {
        using var client = Load(maxBatch: 4);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => client.GetResponseAsync(Ask($"stats {i}"), Greedy)));

        var stats = client.Scheduler.GetStats();
        Assert.Equal(4, stats.Completed);
        Assert.Equal(48, stats.GeneratedTokens);
        Assert.InRange(stats.BusyFraction, 0.01, 1.0);
        Assert.InRange(stats.MeanBatchOccupancy, 0.5, 1.0);
        Assert.True(stats.BusyTokensPerSecond > 0);
        Assert.Equal(0, stats.ActiveSequences);
    }

    [Fact]
    public async Task GetStreamingResponse_SeededSampling_Repeatable()
    {
        using var client = Load(maxBatch: 2);
        var options = new ChatOptions { Temperature = 1, Seed = 7, MaxOutputTokens = 12 };

        var first = await client.GetResponseAsync(Ask("sample me"), options);
        var second = await client.GetResponseAsync(Ask("sample me"), options);

        Assert.Equal(first.Text, second.Text);
    }
}
