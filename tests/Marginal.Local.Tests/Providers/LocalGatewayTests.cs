using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using Marginal.Core.Pricing;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
using Marginal.Local.Scheduling;
using Marginal.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;

namespace Marginal.Local.Tests.Providers;

/// <summary>
/// The real gateway on a loopback port serving the tiny test model as a <c>kind: local</c> provider, called with the
/// official OpenAI SDK and raw HTTP. <c>owned</c> batches 16; <c>narrow</c> has one slot and a queue of one.
/// </summary>
[Collection(LocalModelCollection.Name)]
public sealed class LocalGatewayTests(TestModelFiles files) : IAsyncLifetime
{
    private LocalGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        var yaml = $"""
            server:
              auth: none
            storage:
              record_usage: false
            # Every request must reach the model: the tests compare answers and timings of repeated prompts.
            cache:
              exact:
                enabled: false
            providers:
              owned:
                kind: local
                path: {files.Path}
                threads: 2
                max_batch: 16
                queue_limit: 4
                context: 128
              narrow:
                kind: local
                path: {files.Path}
                threads: 2
                max_batch: 1
                queue_limit: 1
                context: 2048
            models:
              tiny:
                provider: owned
              tiny-narrow:
                provider: narrow
            """;
        _gateway = await LocalGateway.StartAsync(yaml);
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    private BatchScheduler Scheduler(string provider) =>
        (BatchScheduler)_gateway.App.Services.GetRequiredService<GatewayModelSource>().Current.Providers[provider].Chat.GetService(typeof(BatchScheduler))!;

    private static StringContent Body(string model, string text, int maxTokens, bool stream = false) => new(
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":"{{text}}"}],"max_tokens":{{maxTokens}},"temperature":0,"stream":{{(stream ? "true" : "false")}}}""",
        Encoding.UTF8, "application/json");

    [Fact]
    public void Build_LocalProvider_IsOwnedCapacity()
    {
        var provider = _gateway.App.Services.GetRequiredService<GatewayModelSource>().Current.Providers["owned"];

        Assert.Equal("local", provider.Kind);
        Assert.Equal(CapacityKind.Owned, provider.Capacity);
    }

    [Fact]
    public async Task CompleteChat_LocalModel_AnswersWithExactUsage()
    {
        var chat = _gateway.OpenAI.GetChatClient("tiny");

        var completion = (await chat.CompleteChatAsync([new UserChatMessage("hello there")], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 10 })).Value;

        Assert.NotEmpty(completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal("tiny", completion.Model);
        // Counted independently: GPT-2's tokenizer from Microsoft.ML.Tokenizers on the templated prompt.
        var gpt2 = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForModel("gpt2");
        Assert.Equal(gpt2.CountTokens("[INST] hello there [/INST]"), completion.Usage.InputTokenCount);
        Assert.Equal(10, completion.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task CompleteChatStreaming_LocalModel_StreamsTheSameTextInPieces()
    {
        var chat = _gateway.OpenAI.GetChatClient("tiny");
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 10 };
        var plain = (await chat.CompleteChatAsync([new UserChatMessage("stream to me")], options)).Value;
        var text = new StringBuilder();
        var pieces = 0;
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("stream to me")], options))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
                pieces++;
            }
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        Assert.Equal(plain.Content[0].Text, text.ToString());
        Assert.True(pieces >= 5, $"{pieces} pieces for 10 tokens: not streamed as decoded");
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotNull(usage);
        Assert.Equal(plain.Usage.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(10, usage.OutputTokenCount);
    }

    [Fact]
    public async Task CompleteChatStreaming_StopSequenceInTheText_EndsBeforeItWithStop()
    {
        var chat = _gateway.OpenAI.GetChatClient("tiny");
        var greedy = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 };
        var full = (await chat.CompleteChatAsync([new UserChatMessage("say something long")], greedy)).Value.Content[0].Text;
        // A stop sequence from the middle of what greedy decoding says anyway: the answer must end just before it.
        var stop = full.Substring(full.Length / 2, Math.Min(3, full.Length - full.Length / 2));
        var stopped = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 };
        stopped.StopSequences.Add(stop);
        var text = new StringBuilder();
        ChatFinishReason? finish = null;

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("say something long")], stopped))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
            finish ??= update.FinishReason;
        }

        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
    }

    [Fact]
    public async Task CompleteChat_SixteenConcurrentClients_NoCrossTalk()
    {
        var chat = _gateway.OpenAI.GetChatClient("tiny");
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 8 };
        var prompts = Enumerable.Range(0, 16).Select(i => $"client {i} asks about item {i * 11}").ToArray();
        var alone = new List<string>();
        foreach (var prompt in prompts)
        {
            alone.Add((await chat.CompleteChatAsync([new UserChatMessage(prompt)], options)).Value.Content[0].Text);
        }

        var together = await Task.WhenAll(prompts.Select(async p => (await chat.CompleteChatAsync([new UserChatMessage(p)], options)).Value.Content[0].Text));

        Assert.Equal(alone, together);
        Assert.True(alone.Distinct().Count() >= 12, string.Join(" | ", alone));
    }

    [Fact]
    public async Task Post_QueueFull_429WithRetryAfterInOpenAIFormat()
    {
        using var running = new CancellationTokenSource();
        using var first = await StartStreamAsync("tiny-narrow", running.Token);
        var queued = _gateway.Http.PostAsync("/v1/chat/completions", Body("tiny-narrow", "waiting", 4), running.Token);
        await WaitForAsync(() => Scheduler("narrow").GetStats().QueueDepth == 1);

        using var refused = await _gateway.Http.PostAsync("/v1/chat/completions", Body("tiny-narrow", "one too many", 4));

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        var json = await refused.Content.ReadAsStringAsync();
        Assert.Contains("\"error\"", json, StringComparison.Ordinal);
        Assert.Contains("local_queue_full", json, StringComparison.Ordinal);
        await running.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        // The owned model is not put on a cooldown: once its slot is free it serves again at once.
        await WaitForAsync(() => Scheduler("narrow").GetStats() is { ActiveSequences: 0, QueueDepth: 0 });
        using var after = await _gateway.Http.PostAsync("/v1/chat/completions", Body("tiny-narrow", "room again", 4));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task Post_ClientDisconnects_SlotFreedForTheNextRequest()
    {
        var scheduler = Scheduler("narrow");
        var cancelledBefore = scheduler.GetStats().Cancelled;
        using (var cancel = new CancellationTokenSource())
        {
            var stream = await StartStreamAsync("tiny-narrow", cancel.Token);
            await cancel.CancelAsync();
            stream.Dispose();
        }
        await WaitForAsync(() => scheduler.GetStats().Cancelled == cancelledBefore + 1);

        using var next = await _gateway.Http.PostAsync("/v1/chat/completions", Body("tiny-narrow", "next", 4));

        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(0, scheduler.GetStats().ActiveSequences);
    }

    /// <summary>Starts a 2,000-token stream and returns once its first bytes arrived: the sequence holds the batch slot.</summary>
    private async Task<HttpResponseMessage> StartStreamAsync(string model, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Body(model, "a long answer", 2000, stream: true) };
        var response = await _gateway.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[1];
        Assert.Equal(1, await body.ReadAsync(buffer, cancellationToken));
        return response;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in 10 s");
            await Task.Delay(10);
        }
    }
}
