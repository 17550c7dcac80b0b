using LLama;
using LLama.Native;
using LLama.Sampling;

namespace Marginal.Local.Grammars;

/// <summary>
/// Keeps a constrained answer's bytes valid UTF-8. llama.cpp's grammar decodes a token's bytes leniently: it does not
/// check continuation bytes within a token, overlong forms, surrogates or lead bytes above F4, so a byte-level model
/// can emit, say, <c>F0 80 80 80</c>, which the grammar counts as one character and .NET decodes as four U+FFFD, and a
/// string bounded by <c>maxLength</c> then comes out longer than its schema allows. The guard is a sampler stage that
/// removes every token whose bytes would make the answer invalid UTF-8, given the bytes of an unfinished character
/// before it (the well-formed sequences of Unicode's table 3-7). A token with no bytes (end of generation) is allowed
/// only between characters. When it would remove every candidate it removes none, leaving the choice to the other
/// stages. Built once per model (<see cref="Utf8Transitions"/>); one <see cref="Utf8GuardSampler"/> per sequence.
/// </summary>
internal static class Utf8Guard
{
    /// <summary>Between characters.</summary>
    public const byte Start = 0;

    /// <summary>The token's bytes cannot follow the state.</summary>
    public const byte Invalid = 255;

    // States: 0 between characters; 1-3 that many continuation bytes (80-BF) still due; 4 two due, the first A0-BF
    // (after E0: no overlong form); 5 two due, the first 80-9F (after ED: no surrogate); 6 three due, the first 90-BF
    // (after F0: no overlong form); 7 three due, the first 80-8F (after F4: nothing above U+10FFFF).
    public const int States = 8;

    /// <summary>The state after <paramref name="bytes"/> from <paramref name="state"/>, or <see cref="Invalid"/>.</summary>
    public static byte Step(byte state, ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            // Nothing to add: the answer may end here only between characters.
            return state == Start ? Start : Invalid;
        }
        foreach (var b in bytes)
        {
            state = Next(state, b);
            if (state == Invalid)
            {
                return Invalid;
            }
        }
        return state;
    }

    private static byte Next(byte state, byte b) => state switch
    {
        Start => b switch
        {
            < 0x80 => Start,
            >= 0xC2 and <= 0xDF => 1,
            0xE0 => 4,
            0xED => 5,
            >= 0xE1 and <= 0xEF => 2,
            0xF0 => 6,
            >= 0xF1 and <= 0xF3 => 3,
            0xF4 => 7,
            _ => Invalid,
        },
        1 or 2 or 3 => b is >= 0x80 and <= 0xBF ? (byte)(state - 1) : Invalid,
        4 => b is >= 0xA0 and <= 0xBF ? (byte)1 : Invalid,
        5 => b is >= 0x80 and <= 0x9F ? (byte)1 : Invalid,
        6 => b is >= 0x90 and <= 0xBF ? (byte)2 : Invalid,
        7 => b is >= 0x80 and <= 0x8F ? (byte)2 : Invalid,
        _ => Invalid,
    };
}

/// <summary>For every token of a model and every <see cref="Utf8Guard"/> state, the state after the token's bytes (8 bytes per token). Immutable, shared by all sequences.</summary>
internal sealed class Utf8Transitions
{
    private readonly byte[] _next;

    public Utf8Transitions(byte[] next)
    {
        if (next.Length % Utf8Guard.States != 0)
        {
            throw new ArgumentException("one row of states per token", nameof(next));
        }
        _next = next;
    }

    public int Tokens => _next.Length / Utf8Guard.States;

    /// <summary>The state after <paramref name="token"/> from <paramref name="state"/>; <see cref="Utf8Guard.Invalid"/> for a token outside the table.</summary>
    public byte Next(int token, byte state) => (uint)token < (uint)Tokens ? _next[(token * Utf8Guard.States) + state] : Utf8Guard.Invalid;

    /// <summary>The table of <paramref name="weights"/>' vocabulary, its tokens' bytes as the answer's decoder reads them (special tokens as no bytes).</summary>
    public static Utf8Transitions Of(LLamaWeights weights)
    {
        var model = weights.NativeHandle;
        var count = model.Vocab.Count;
        var next = new byte[count * Utf8Guard.States];
        var buffer = new byte[256];
        for (var token = 0; token < count; token++)
        {
            var length = (int)model.TokenToSpan((LLamaToken)token, buffer, 0, false);
            if (length > buffer.Length)
            {
                buffer = new byte[length];
                length = (int)model.TokenToSpan((LLamaToken)token, buffer, 0, false);
            }
            var bytes = buffer.AsSpan(0, Math.Max(0, length));
            for (byte state = 0; state < Utf8Guard.States; state++)
            {
                next[(token * Utf8Guard.States) + state] = Utf8Guard.Step(state, bytes);
            }
        }
        return new Utf8Transitions(next);
    }
}

/// <summary>The guard as a llama.cpp sampler stage: one per sequence, following the bytes of the tokens accepted.</summary>
internal sealed class Utf8GuardSampler(Utf8Transitions transitions) : ICustomSampler
{
    private byte _state = Utf8Guard.Start;

    public string Name => "marginal-utf8-guard";

    public void Apply(ref LLamaTokenDataArrayNative tokenData)
    {
        var data = tokenData.Data;
        var allowed = 0;
        foreach (ref readonly var candidate in data)
        {
            if (!float.IsNegativeInfinity(candidate.Logit) && transitions.Next((int)candidate.ID, _state) != Utf8Guard.Invalid)
            {
                allowed++;
            }
        }
        if (allowed == 0)
        {
            return;
        }
        foreach (ref var candidate in data)
        {
            if (transitions.Next((int)candidate.ID, _state) == Utf8Guard.Invalid)
            {
                candidate.Logit = float.NegativeInfinity;
            }
        }
        tokenData.Sorted = false;
    }

    public void Accept(LLamaToken token)
    {
        var next = transitions.Next((int)token, _state);
        // A token the guard did not choose (every candidate was invalid): start afresh rather than stay stuck.
        _state = next == Utf8Guard.Invalid ? Utf8Guard.Start : next;
    }

    public void Reset() => _state = Utf8Guard.Start;

    public ICustomSampler Clone() => new Utf8GuardSampler(transitions) { _state = _state };

    public void Dispose()
    {
    }
}

/// <summary><see cref="DefaultSamplingPipeline"/>'s stages for Marginal's settings (no penalties, top-k or min-p), with <see cref="Utf8GuardSampler"/> first.</summary>
internal sealed class GuardedSamplingPipeline(Utf8Transitions transitions) : DefaultSamplingPipeline
{
    protected override SafeLLamaSamplerChainHandle CreateChain(SafeLLamaContextHandle context)
    {
        var chain = SafeLLamaSamplerChainHandle.Create(LLamaSamplerChainParams.Default());
        chain.AddCustom(new Utf8GuardSampler(transitions));
        chain.AddTopP(TopP, MinKeep);
        chain.AddTemperature(Temperature);
        chain.AddDistributionSampler(Seed);
        return chain;
    }
}

/// <summary><see cref="GreedySamplingPipeline"/> with <see cref="Utf8GuardSampler"/> after the grammar.</summary>
internal sealed class GuardedGreedySamplingPipeline(Utf8Transitions transitions) : GreedySamplingPipeline
{
    protected override SafeLLamaSamplerChainHandle CreateChain(SafeLLamaContextHandle context)
    {
        var chain = SafeLLamaSamplerChainHandle.Create(LLamaSamplerChainParams.Default());
        if (Grammar is { } grammar)
        {
            chain.AddGrammar(context.ModelHandle, grammar.Gbnf, grammar.Root);
        }
        chain.AddCustom(new Utf8GuardSampler(transitions));
        chain.AddGreedySampler();
        return chain;
    }
}
