using System.Threading.Channels;
using LLama;
using LLama.Batched;
using LLama.Common;
using LLama.Native;
using LLama.Sampling;
using Marginal.Core.Errors;
using Marginal.Local.Grammars;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Marginal.Local.Scheduling;

/// <summary>
/// Continuous batching for one loaded model. One loop owns a <see cref="BatchedExecutor"/>; between decode steps it
/// samples every running sequence, ends the finished and the cancelled, and admits waiting requests into the free
/// slots, so a new request joins the running batch at the next step instead of waiting for the batch to drain.
/// The KV cache holds <see cref="LocalModelOptions.MaxBatch"/> sequences of <see cref="SequenceContext"/> tokens
/// each; a request that cannot fit its prompt plus its token limit is refused up front.
/// Thread-safe: <see cref="Submit"/> and <see cref="GetStats"/> may be called from any thread.
/// </summary>
public sealed partial class BatchScheduler : IDisposable
{
    /// <summary>Retry-After bounds for a full queue: at least a second (HTTP's unit), at most a minute.</summary>
    private static readonly TimeSpan MinRetryAfter = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxRetryAfter = TimeSpan.FromMinutes(1);

    private readonly LLamaWeights _weights;
    private readonly ModelParams _contextParams;
    private readonly LocalModelOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly LinkedList<ScheduledSequence> _queue = new();
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _stop = new();
    private readonly long _startedAt;
    private readonly Task _loop;
    private BatchedExecutor _executor;
    // The UTF-8 guard's table for this model, built by the loop at the first constrained sequence.
    private Utf8Transitions? _utf8;

    // Counters: written by the loop (and by Submit/Cancel for the last three) under _gate, read by GetStats.
    private int _active;
    private long _busyTicks;
    private long _steps;
    private long _sequenceSteps;
    private long _promptTokens;
    private long _generatedTokens;
    private long _completed;
    private long _cancelled;
    private long _rejected;
    private double _meanSequenceSeconds = 1;

    public BatchScheduler(LLamaWeights weights, LocalModelOptions options, TimeProvider? time = null, ILogger? logger = null)
    {
        _weights = weights;
        _options = options;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        SequenceContext = options.Context > 0 ? options.Context : Math.Min(weights.ContextSize, 4096);
        _contextParams = new ModelParams(options.ModelPath)
        {
            // n_ctx = sequences × (prompt + max tokens); with a split (non-unified) KV cache llama.cpp gives each
            // sequence n_ctx / n_seq_max cells, so every admitted sequence owns exactly SequenceContext of them.
            ContextSize = checked((uint)(options.MaxBatch * SequenceContext)),
            SeqMax = (uint)options.MaxBatch,
            KVUnified = false,
            Threads = options.Threads,
            BatchThreads = options.Threads,
        };
        _executor = new BatchedExecutor(weights, _contextParams);
        _startedAt = _time.GetTimestamp();
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Most tokens (prompt plus output) one sequence may hold.</summary>
    public int SequenceContext { get; }

    public int MaxBatch => _options.MaxBatch;

    /// <summary>
    /// Queues a sequence and returns the reader of its output. Every reader ends: with a final update that has
    /// <see cref="SequenceUpdate.End"/> set, or with an exception (<see cref="OperationCanceledException"/> when
    /// <paramref name="cancellationToken"/> fires, <see cref="GatewayException"/> when decoding fails).
    /// Cancelling frees the sequence's queue place at once, or its batch slot at the next step boundary.
    /// <c>stop</c> lists stop sequences: generation ends before the first one and its text is not sent (null or empty: none).
    /// </summary>
    /// <exception cref="GatewayException">The queue is full (RateLimited, with RetryAfter), or the sequence cannot fit (InvalidRequest).</exception>
    public ChannelReader<SequenceUpdate> Submit(IReadOnlyList<LLamaToken> prompt, int maxTokens, SamplingSettings sampling, IReadOnlyList<string>? stop, CancellationToken cancellationToken)
    {
        if (prompt.Count == 0)
        {
            throw GatewayException.InvalidRequest("The prompt is empty.", "messages");
        }
        if (maxTokens < 1 || prompt.Count + maxTokens > SequenceContext)
        {
            throw GatewayException.InvalidRequest(
                $"This model's context is {SequenceContext} tokens per request; the prompt has {prompt.Count} and {maxTokens} more were asked for.",
                "messages", "context_length_exceeded");
        }
        var sequence = new ScheduledSequence(this, prompt, maxTokens, sampling, cancellationToken)
        {
            Stop = stop is { Count: > 0 } ? new StopSequenceFilter(stop) : null,
        };
        lock (_gate)
        {
            // Headroom: a free slot nobody queued for, so this request joins the running batch at the next step.
            sequence.Queued = _queue.Count >= _options.MaxBatch - _active;
            // Free slots count as room: a burst into an idle model is admitted at the next step, not refused.
            if (_queue.Count >= _options.QueueLimit + (_options.MaxBatch - _active))
            {
                _rejected++;
                throw new GatewayException(GatewayErrorKind.RateLimited,
                    $"The local model's queue is full ({_options.QueueLimit} waiting, {_options.MaxBatch} running).", "local_queue_full")
                {
                    RetryAfter = EstimateWait(_queue.Count),
                };
            }
            sequence.Node = _queue.AddLast(sequence);
        }
        sequence.Watch();
        _wake.Writer.TryWrite(true);
        return sequence.Output.Reader;
    }

    public SchedulerStats GetStats()
    {
        lock (_gate)
        {
            return new SchedulerStats(_queue.Count, _active, _options.MaxBatch, _time.GetElapsedTime(_startedAt),
                TimeSpan.FromTicks(_busyTicks), _steps, _sequenceSteps, _promptTokens, _generatedTokens, _completed, _cancelled, _rejected);
        }
    }

    /// <summary>
    /// How long a request submitted now would wait for a batch slot: zero while a slot is free, else
    /// <see cref="QueueWait"/> behind the queue. The capacity layer spills to another source when this passes its bound.
    /// </summary>
    public TimeSpan ExpectedWait()
    {
        lock (_gate)
        {
            return _queue.Count < _options.MaxBatch - _active ? TimeSpan.Zero : QueueWait(_queue.Count);
        }
    }

    /// <summary>Retry-After for a full queue: <see cref="QueueWait"/> rounded up to whole seconds, within its bounds.</summary>
    private TimeSpan EstimateWait(int queued)
    {
        var wait = TimeSpan.FromSeconds(Math.Ceiling(QueueWait(queued).TotalSeconds));
        return wait < MinRetryAfter ? MinRetryAfter : wait > MaxRetryAfter ? MaxRetryAfter : wait;
    }

    /// <summary>
    /// Expected wait for a new request behind <paramref name="queued"/> others: the queue drains a batch's worth of
    /// sequences per mean sequence time (a moving mean of completed sequences' time in the batch).
    /// </summary>
    private TimeSpan QueueWait(int queued) => TimeSpan.FromSeconds(((queued / _options.MaxBatch) + 1) * _meanSequenceSeconds);

    /// <summary>Called from a cancellation callback: a queued sequence leaves the queue now; a running one is ended by the loop.</summary>
    private void OnCancelled(ScheduledSequence sequence)
    {
        bool wasQueued;
        lock (_gate)
        {
            wasQueued = sequence.Node?.List is not null;
            if (wasQueued)
            {
                _queue.Remove(sequence.Node!);
                _cancelled++;
            }
        }
        if (wasQueued)
        {
            sequence.Output.Writer.TryComplete(new OperationCanceledException(sequence.CancellationToken));
        }
    }

    private async Task RunAsync()
    {
        var running = new List<ScheduledSequence>(_options.MaxBatch);
        var vocab = _weights.Vocab;
        while (!_stop.IsCancellationRequested)
        {
            Admit(running);
            if (running.Count == 0)
            {
                try
                {
                    await _wake.Reader.ReadAsync(_stop.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                continue;
            }
            var started = _time.GetTimestamp();
            DecodeResult result;
            try
            {
                result = await _executor.Infer(_stop.Token);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                LogDecodeFailed(_logger, ex.GetType().Name, running.Count);
                Restart(running, ex);
                continue;
            }
            if (result != DecodeResult.Ok)
            {
                // The cache is sized so every admitted sequence fits; a failure here leaves the batch unusable.
                LogDecodeFailed(_logger, result.ToString(), running.Count);
                Restart(running, null);
                continue;
            }
            var busy = _time.GetElapsedTime(started);
            var inBatch = running.Count;
            // Each sequence in the step is charged an equal share of its time: Σ shares over sequences = busy time.
            var share = (double)busy.Ticks / inBatch;
            foreach (var sequence in running)
            {
                sequence.BusyTicks += share;
            }
            var generated = 0;
            for (var i = 0; i < running.Count; i++)
            {
                var sequence = running[i];
                // A sequence still being prefilled has tokens queued for a later step; it is never ended
                // before they are decoded, or they would land in the cache of the next sequence to get its id.
                if (!sequence.Conversation!.RequiresSampling)
                {
                    continue;
                }
                if (sequence.CancellationToken.IsCancellationRequested)
                {
                    running.RemoveAt(i--);
                    End(sequence, null);
                    continue;
                }
                var token = sequence.Conversation.Sample(sequence.Sampler!);
                if (token.IsEndOfGeneration(vocab))
                {
                    running.RemoveAt(i--);
                    End(sequence, SequenceEnd.Stop);
                    continue;
                }
                generated++;
                sequence.Generated++;
                sequence.Decoder!.Add(token);
                var text = sequence.Decoder.Read();
                if (sequence.Stop is { } filter)
                {
                    text = filter.Push(text);
                }
                if (text.Length > 0)
                {
                    sequence.Output.Writer.TryWrite(new SequenceUpdate(text));
                }
                if (sequence.Stop?.Stopped == true)
                {
                    running.RemoveAt(i--);
                    End(sequence, SequenceEnd.Stop);
                    continue;
                }
                if (sequence.Generated >= sequence.MaxTokens)
                {
                    running.RemoveAt(i--);
                    End(sequence, SequenceEnd.Length);
                    continue;
                }
                sequence.Conversation.Prompt(token);
            }
            lock (_gate)
            {
                _busyTicks += busy.Ticks;
                _steps++;
                _sequenceSteps += inBatch;
                _generatedTokens += generated;
                _active = running.Count;
            }
        }
        Shutdown(running);
    }

    /// <summary>Moves waiting sequences into free slots and prompts them; they decode with the running batch from the next step.</summary>
    private void Admit(List<ScheduledSequence> running)
    {
        while (running.Count < _options.MaxBatch)
        {
            ScheduledSequence sequence;
            lock (_gate)
            {
                if (_queue.First is not { } first)
                {
                    break;
                }
                sequence = first.Value;
                _queue.RemoveFirst();
                _promptTokens += sequence.Prompt.Length;
                _active = running.Count + 1;
            }
            sequence.AdmittedAt = _time.GetTimestamp();
            sequence.Conversation = _executor.Create();
            sequence.Sampler = SamplerOf(sequence.Sampling);
            sequence.Decoder = new StreamingTokenDecoder(_executor.Context);
            sequence.Conversation.Prompt(sequence.Prompt);
            running.Add(sequence);
        }
    }

    /// <summary>
    /// The sampling pipeline of one sequence: greedy at temperature 0, else top-p, temperature and a seeded draw; with an
    /// output grammar, <see cref="Utf8Guard"/> keeps the answer's bytes valid UTF-8, which llama.cpp's grammar does not check.
    /// </summary>
    private ISamplingPipeline SamplerOf(SamplingSettings sampling)
    {
        var grammar = sampling.Grammar is { } gbnf ? new Grammar(gbnf, "root") : null;
        var seed = sampling.Seed ?? (uint)Random.Shared.Next();
        if (grammar is null)
        {
            return sampling.Temperature <= 0
                ? new GreedySamplingPipeline()
                : new DefaultSamplingPipeline { Temperature = sampling.Temperature, TopP = sampling.TopP, TopK = 0, MinP = 0, Seed = seed };
        }
        var utf8 = _utf8 ??= Utf8Transitions.Of(_weights);
        return sampling.Temperature <= 0
            ? new GuardedGreedySamplingPipeline(utf8) { Grammar = grammar }
            : new GuardedSamplingPipeline(utf8) { Temperature = sampling.Temperature, TopP = sampling.TopP, TopK = 0, MinP = 0, Seed = seed, Grammar = grammar };
    }

    /// <summary>Frees the sequence's slot and ends its output: with the end reason, or as cancelled when <paramref name="end"/> is null.</summary>
    private void End(ScheduledSequence sequence, SequenceEnd? end)
    {
        sequence.Release();
        var seconds = _time.GetElapsedTime(sequence.AdmittedAt).TotalSeconds;
        lock (_gate)
        {
            // The slot is free from now, not from the end of the step: a client that sends its next request as soon as
            // this answer ends must find the slot free, or it is flagged queued and charged full cost as marginal.
            _active = Math.Max(0, _active - 1);
            if (end is null)
            {
                _cancelled++;
            }
            else
            {
                _completed++;
                // Exponential moving mean, weight 0.2 on the newest: follows load changes within a few sequences.
                _meanSequenceSeconds += 0.2 * (seconds - _meanSequenceSeconds);
            }
        }
        if (end is { } reason)
        {
            // Text held back in case it began a stop sequence is the answer's end after all.
            if (sequence.Stop?.Flush() is { Length: > 0 } held)
            {
                sequence.Output.Writer.TryWrite(new SequenceUpdate(held));
            }
            sequence.Output.Writer.TryWrite(new SequenceUpdate("", reason, sequence.Prompt.Length, sequence.Generated,
                TimeSpan.FromTicks((long)Math.Round(sequence.BusyTicks)), sequence.Queued));
            sequence.Output.Writer.TryComplete();
        }
        else
        {
            sequence.Output.Writer.TryComplete(new OperationCanceledException(sequence.CancellationToken));
        }
    }

    /// <summary>After a failed decode: fails every running sequence and starts a fresh executor, so later requests still serve.</summary>
    private void Restart(List<ScheduledSequence> running, Exception? cause)
    {
        var error = new GatewayException(GatewayErrorKind.UpstreamError, "The local model failed while decoding.", "local_decode_failed", innerException: cause);
        foreach (var sequence in running)
        {
            sequence.Release();
            sequence.Output.Writer.TryComplete(error);
        }
        running.Clear();
        _executor.Dispose();
        _executor = new BatchedExecutor(_weights, _contextParams);
        lock (_gate)
        {
            _active = 0;
        }
    }

    private void Shutdown(List<ScheduledSequence> running)
    {
        var error = new GatewayException(GatewayErrorKind.UpstreamUnavailable, "The local model is shutting down.", "local_shutdown");
        List<ScheduledSequence> queued;
        lock (_gate)
        {
            queued = [.. _queue];
            _queue.Clear();
            _active = 0;
        }
        foreach (var sequence in running.Concat(queued))
        {
            sequence.Release();
            sequence.Output.Writer.TryComplete(error);
        }
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }
        _stop.Cancel();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(10));
        }
        catch (AggregateException)
        {
            // The loop ends its sequences itself; a fault here has nothing left to tell a client.
        }
        _executor.Dispose();
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Local decode step failed ({Reason}); {Running} running sequences were ended and the batch restarted")]
    private static partial void LogDecodeFailed(ILogger logger, string reason, int running);

    /// <summary>One request's life in the scheduler. Its native state (conversation, sampler) is touched by the loop only.</summary>
    private sealed class ScheduledSequence(BatchScheduler owner, IReadOnlyList<LLamaToken> prompt, int maxTokens, SamplingSettings sampling, CancellationToken cancellationToken)
    {
        private CancellationTokenRegistration _registration;

        public LLamaToken[] Prompt { get; } = [.. prompt];
        public int MaxTokens { get; } = maxTokens;
        public SamplingSettings Sampling { get; } = sampling;
        public Channel<SequenceUpdate> Output { get; } = Channel.CreateUnbounded<SequenceUpdate>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
        public LinkedListNode<ScheduledSequence>? Node { get; set; }
        public CancellationToken CancellationToken { get; } = cancellationToken;
        public Conversation? Conversation { get; set; }
        public ISamplingPipeline? Sampler { get; set; }
        public StreamingTokenDecoder? Decoder { get; set; }
        public StopSequenceFilter? Stop { get; init; }
        public int Generated { get; set; }
        public long AdmittedAt { get; set; }
        /// <summary>Its share of busy time so far, in ticks: Σ over the steps it was in of step time ÷ sequences in the step.</summary>
        public double BusyTicks { get; set; }
        /// <summary>True when it arrived to a full batch and waited in the queue (the pool had no headroom).</summary>
        public bool Queued { get; set; }

        public void Watch()
        {
            if (CancellationToken.CanBeCanceled)
            {
                _registration = CancellationToken.Register(static s =>
                {
                    var sequence = (ScheduledSequence)s!;
                    sequence.Owner.OnCancelled(sequence);
                    sequence.Owner._wake.Writer.TryWrite(true);
                }, this);
            }
        }

        private BatchScheduler Owner => owner;

        /// <summary>Frees the batch slot (the sequence's KV cells and id) and the sampler.</summary>
        public void Release()
        {
            _registration.Dispose();
            Conversation?.Dispose();
            Conversation = null;
            Sampler?.Dispose();
            Sampler = null;
        }
    }
}
