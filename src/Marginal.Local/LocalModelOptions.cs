namespace Marginal.Local;

/// <summary>Where the model's layers run. <see cref="Cuda"/> needs a CUDA backend package next to the CPU one; without it llama.cpp falls back to the CPU.</summary>
public enum LocalBackend
{
    Cpu,
    Cuda,
}

/// <summary>How one GGUF model is loaded and scheduled. Immutable; one <see cref="LocalChatClient"/> per distinct value.</summary>
public sealed record LocalModelOptions
{
    /// <summary>Path to the GGUF file.</summary>
    public required string ModelPath { get; init; }

    /// <summary>Name the model is reported under in responses.</summary>
    public string ModelName { get; init; } = "local";

    /// <summary>CPU threads for decoding; default: every core.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Most sequences decoded together in one step (the running batch).</summary>
    public int MaxBatch { get; init; } = 8;

    /// <summary>Most requests waiting for a slot; one more is refused with 429.</summary>
    public int QueueLimit { get; init; } = 64;

    /// <summary>
    /// Tokens one sequence may hold: its prompt plus its output. The KV cache is sized
    /// <see cref="MaxBatch"/> × this, so every admitted sequence is sure of its room; 0: the model's trained context, at most 4096.
    /// </summary>
    public int Context { get; init; }

    public LocalBackend Backend { get; init; } = LocalBackend.Cpu;

    /// <summary>
    /// Most characters in a JSON string of grammar-constrained output whose schema sets no <c>maxLength</c>; 0: no bound.
    /// A bound keeps a model that never closes a string (a weak or random-weight one) from spending its whole token
    /// limit inside one value, at the price of cutting long values short.
    /// </summary>
    public int JsonStringLimit { get; init; }
}
