using System.Runtime.CompilerServices;
using System.Text;
using LLama;
using LLama.Common;
using Marginal.Core.Errors;
using Marginal.Local.Grammars;
using Marginal.Local.Scheduling;
using Marginal.Local.Tools;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Marginal.Local;

/// <summary>
/// A GGUF model served through LLamaSharp with continuous batching. Text streams as it decodes; usage is exact:
/// input is the templated prompt's token count and output the sampled tokens sent (the end-of-generation token is
/// not counted), both from the model's own tokenizer. Request settings used: MaxOutputTokens (default: the rest of
/// the sequence's context), Temperature (default 1, as OpenAI's), TopP, Seed, StopSequences (the answer ends before
/// the first one, which is not sent; its tokens count as output), ResponseFormat and Tools with ToolMode
/// (<see cref="OutputConstraint"/>: grammar-constrained output, calls parsed into <see cref="FunctionCallContent"/>). Thread-safe; owns the loaded weights and the scheduler and disposes both.
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

    /// <summary>
    /// The prompt's tokens as the model sees them: tool calls and results rendered as text and the tools described in
    /// the system message (<see cref="ToolCallFormat"/>), the chat template applied, then the model's tokenizer.
    /// </summary>
    public IReadOnlyList<LLama.Native.LLamaToken> Tokenize(IEnumerable<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration>? tools = null) =>
        _weights.Tokenize(Format.Format(ToolCallFormat.Prepare(messages, tools ?? [])), add_bos: true, special: true, Encoding.UTF8);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var output = OutputConstraint.For(options, Options.JsonStringLimit);
        if (output.Grammar is { } gbnf && !GrammarCheck.Parses(_weights, gbnf))
        {
            // The grammar is generated from the request; one llama.cpp cannot parse is a gap in the translation.
            throw GatewayException.InvalidRequest("The local model could not turn this request's response_format or tools into an output grammar.",
                output.Param, "unsupported_schema");
        }
        var prompt = Tokenize(messages, output.Tools);
        var maxTokens = options?.MaxOutputTokens ?? Scheduler.SequenceContext - prompt.Count;
        var sampling = new SamplingSettings(options?.Temperature ?? 1f, options?.TopP ?? 1f, options?.Seed is { } seed ? unchecked((uint)seed) : null, output.Grammar);
        // A linked source so that a caller who stops reading early (no cancellation) still frees the slot.
        using var abandon = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var updates = Scheduler.Submit(prompt, maxTokens, sampling, options?.StopSequences is { Count: > 0 } stops ? [.. stops] : null, abandon.Token);
        var id = "chatcmpl-local-" + Guid.NewGuid().ToString("N");
        var created = _time.GetUtcNow();
        var model = options?.ModelId ?? Options.ModelName;
        // With tools, text is sent as it decodes until a call begins; from there it is held until the answer ends
        // and then sent as the calls it parses into, or as the text it was. A required call holds everything.
        var answer = new StringBuilder();
        // (An empty stop sequence matches at once, so a required call's filter holds everything.)
        var held = output.Tools.Count == 0 ? null : new StopSequenceFilter([output.CallRequired ? "" : ToolCallFormat.CallStart]);
        var sent = 0;
        var finished = false;
        try
        {
            await foreach (var update in updates.ReadAllAsync(cancellationToken))
            {
                // Text already decoded is not handed to a caller who has cancelled.
                cancellationToken.ThrowIfCancellationRequested();
                var text = update.Text;
                if (held is not null)
                {
                    answer.Append(text);
                    text = held.Push(text);
                    sent += text.Length;
                }
                if (text.Length > 0)
                {
                    yield return new ChatResponseUpdate(ChatRole.Assistant, text) { ResponseId = id, MessageId = id, CreatedAt = created, ModelId = model };
                }
                if (update.End is { } end)
                {
                    finished = true;
                    var contents = new List<AIContent>();
                    var reason = end == SequenceEnd.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length;
                    if (held is not null)
                    {
                        var full = answer.ToString();
                        if (held.Stopped && ToolCallFormat.TryParse(full, output.Tools, NewCallId, out var calls))
                        {
                            contents.AddRange(calls);
                            reason = ChatFinishReason.ToolCalls;
                        }
                        else if (full.Length > sent)
                        {
                            contents.Add(new TextContent(full[sent..]));
                        }
                    }
                    contents.Add(new UsageContent(new UsageDetails
                    {
                        InputTokenCount = update.PromptTokens,
                        OutputTokenCount = update.OutputTokens,
                        TotalTokenCount = update.PromptTokens + update.OutputTokens,
                        AdditionalCounts = new AdditionalPropertiesDictionary<long>
                        {
                            [BusyTicksKey] = update.BusyShare.Ticks,
                            [QueuedKey] = update.Queued ? 1 : 0,
                        },
                    }));
                    yield return new ChatResponseUpdate(ChatRole.Assistant, contents)
                    {
                        ResponseId = id,
                        MessageId = id,
                        CreatedAt = created,
                        ModelId = model,
                        FinishReason = reason,
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

    private static string NewCallId() => "call_" + Guid.NewGuid().ToString("N")[..24];

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
