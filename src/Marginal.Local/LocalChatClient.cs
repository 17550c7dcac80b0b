using System.Runtime.CompilerServices;
using System.Text;
using LLama;
using LLama.Common;
using Marginal.Local.Scheduling;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Marginal.Local;

/// <summary>
/// A GGUF model served through LLamaSharp with continuous batching. Text streams as it decodes; usage is exact:
/// input is the templated prompt's token count and output the sampled tokens sent (the end-of-generation token is
/// not counted), both from the model's own tokenizer. Request settings used: MaxOutputTokens (default: the rest of
/// the sequence's context), Temperature (default 1, as OpenAI's), TopP, Seed, StopSequences (the answer ends before
/// the first one, which is not sent; its tokens count as output). Tools and response formats are not applied. Thread-safe; owns the loaded weights and the scheduler and disposes both.
/// </summary>
public sealed class LocalChatClient : IChatClient
{
    /// <summary>
    /// Key in the final <see cref="UsageDetails.AdditionalCounts"/> for the request's share of the model's busy time,
    /// in ticks (100 ns): Σ over the decode steps it was in of step time ÷ sequences in that step. Owned-pool costing reads it.
    /// </summary>
    public const string BusyTicksKey = "marginal.owned.busy_ticks";

    /// <summary>Key in the final <see cref="UsageDetails.AdditionalCounts"/>: 1 when the request queued for a slot (no headroom), else 0.</summary>
    public const string QueuedKey = "marginal.owned.queued";

    private readonly LLamaWeights _weights;
    private readonly TimeProvider _time;
    private readonly ChatClientMetadata _metadata;

    /// <summary>Loads the model. Throws when the file is missing or llama.cpp cannot load it.</summary>
    public LocalChatClient(LocalModelOptions options, TimeProvider? time = null, ILoggerFactory? loggers = null)
    {
        if (!File.Exists(options.ModelPath))
        {
            throw new FileNotFoundException($"No model file at {options.ModelPath}.", options.ModelPath);
        }
        loggers ??= NullLoggerFactory.Instance;
        NativeRuntime.EnsureLoaded(options.Backend, loggers.CreateLogger("Marginal.Local.LlamaCpp"));
        Options = options;
        _time = time ?? TimeProvider.System;
        var load = new ModelParams(options.ModelPath)
        {
            // CUDA: every layer on the GPU (llama.cpp caps the count at the model's layers).
            GpuLayerCount = options.Backend == LocalBackend.Cuda ? 999 : 0,
        };
        _weights = LLamaWeights.LoadFromFile(load);
        try
        {
            Format = PromptFormat.For(_weights);
            Scheduler = new BatchScheduler(_weights, options, _time, loggers.CreateLogger<BatchScheduler>());
        }
        catch
        {
            _weights.Dispose();
            throw;
        }
        _metadata = new ChatClientMetadata("local", null, options.ModelName);
    }

    public LocalModelOptions Options { get; }

    public BatchScheduler Scheduler { get; }

    public PromptFormat Format { get; }

    /// <summary>The prompt's tokens as the model sees them: the chat template applied, then the model's tokenizer.</summary>
    public IReadOnlyList<LLama.Native.LLamaToken> Tokenize(IEnumerable<ChatMessage> messages) =>
        _weights.Tokenize(Format.Format(messages), add_bos: true, special: true, Encoding.UTF8);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var prompt = Tokenize(messages);
        var maxTokens = options?.MaxOutputTokens ?? Scheduler.SequenceContext - prompt.Count;
        var sampling = new SamplingSettings(options?.Temperature ?? 1f, options?.TopP ?? 1f, options?.Seed is { } seed ? unchecked((uint)seed) : null);
        // A linked source so that a caller who stops reading early (no cancellation) still frees the slot.
        using var abandon = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var output = Scheduler.Submit(prompt, maxTokens, sampling, options?.StopSequences is { Count: > 0 } stops ? [.. stops] : null, abandon.Token);
        var id = "chatcmpl-local-" + Guid.NewGuid().ToString("N");
        var created = _time.GetUtcNow();
        var model = options?.ModelId ?? Options.ModelName;
        var finished = false;
        try
        {
            await foreach (var update in output.ReadAllAsync(cancellationToken))
            {
                // Text already decoded is not handed to a caller who has cancelled.
                cancellationToken.ThrowIfCancellationRequested();
                if (update.Text.Length > 0)
                {
                    yield return new ChatResponseUpdate(ChatRole.Assistant, update.Text) { ResponseId = id, MessageId = id, CreatedAt = created, ModelId = model };
                }
                if (update.End is { } end)
                {
                    finished = true;
                    var usage = new UsageDetails
                    {
                        InputTokenCount = update.PromptTokens,
                        OutputTokenCount = update.OutputTokens,
                        TotalTokenCount = update.PromptTokens + update.OutputTokens,
                        AdditionalCounts = new AdditionalPropertiesDictionary<long>
                        {
                            [BusyTicksKey] = update.BusyShare.Ticks,
                            [QueuedKey] = update.Queued ? 1 : 0,
                        },
                    };
                    yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(usage)])
                    {
                        ResponseId = id,
                        MessageId = id,
                        CreatedAt = created,
                        ModelId = model,
                        FinishReason = end == SequenceEnd.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length,
                    };
                }
            }
        }
        finally
        {
            if (!finished)
            {
                await abandon.CancelAsync();
            }
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType == typeof(BatchScheduler) ? Scheduler
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
        Scheduler.Dispose();
        _weights.Dispose();
    }
}
