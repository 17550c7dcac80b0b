using System.Text;
using LLama.Native;
using Marginal.Local.Grammars;

namespace Marginal.Local.Tests.Grammars;

/// <summary>The UTF-8 guard's state machine against .NET's strict decoder, and its sampler stage on hand-made candidates.</summary>
public sealed class Utf8GuardTests
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The state after feeding <paramref name="tokens"/> one by one from the start.</summary>
    private static byte Feed(params byte[][] tokens)
    {
        var state = Utf8Guard.Start;
        foreach (var token in tokens)
        {
            state = Utf8Guard.Step(state, token);
            if (state == Utf8Guard.Invalid)
            {
                break;
            }
        }
        return state;
    }

    [Theory]
    [InlineData("plain ascii")]
    [InlineData("é")]
    [InlineData("€ and 中文")]
    [InlineData("😀 emoji")]
    [InlineData("\U0010FFFF")]
    [InlineData("\uD7FF\uE000")]
    public void Step_ValidTextSplitIntoSingleByteTokens_EndsBetweenCharacters(string text)
    {
        var tokens = Encoding.UTF8.GetBytes(text).Select(b => new[] { b }).ToArray();

        Assert.Equal(Utf8Guard.Start, Feed(tokens));
    }

    [Fact]
    public void Step_CharacterSplitAcrossTokens_PendingUntilItsLastByte()
    {
        var emoji = Encoding.UTF8.GetBytes("😀");

        Assert.NotEqual(Utf8Guard.Start, Feed(emoji[..1]));
        Assert.NotEqual(Utf8Guard.Invalid, Feed(emoji[..1], emoji[1..3]));
        Assert.Equal(Utf8Guard.Start, Feed(emoji[..1], emoji[1..3], emoji[3..]));
    }

    [Theory]
    [InlineData(new byte[] { 0xF0, 0x80, 0x80, 0x80 })] // overlong (what llama.cpp's grammar counts as one character)
    [InlineData(new byte[] { 0xE0, 0x80, 0xAF })] // overlong '/'
    [InlineData(new byte[] { 0xC0, 0xAF })] // overlong '/'
    [InlineData(new byte[] { 0xC1, 0x81 })]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })] // a surrogate
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 })] // above U+10FFFF
    [InlineData(new byte[] { 0xF5, 0x80, 0x80, 0x80 })]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { 0x80 })] // a continuation with no lead
    [InlineData(new byte[] { 0xF0, 0x41, 0x42, 0x43 })] // a lead followed by ASCII
    public void Step_InvalidSequence_InvalidAsBytesOrSplit(byte[] bytes)
    {
        Assert.Throws<DecoderFallbackException>(() => Strict.GetString(bytes));
        Assert.Equal(Utf8Guard.Invalid, Utf8Guard.Step(Utf8Guard.Start, bytes));
        Assert.Equal(Utf8Guard.Invalid, Feed([.. bytes.Select(b => new[] { b })]));
    }

    [Fact]
    public void Step_NoBytes_AllowedOnlyBetweenCharacters()
    {
        Assert.Equal(Utf8Guard.Start, Utf8Guard.Step(Utf8Guard.Start, []));
        Assert.Equal(Utf8Guard.Invalid, Utf8Guard.Step(Feed([0xE2]), []));
    }

    /// <summary>A vocabulary of hand-made tokens: their transitions as <see cref="Utf8Transitions.Of"/> computes them from a model.</summary>
    private static Utf8Transitions Vocabulary(params byte[][] tokens)
    {
        var next = new byte[tokens.Length * Utf8Guard.States];
        for (var token = 0; token < tokens.Length; token++)
        {
            for (byte state = 0; state < Utf8Guard.States; state++)
            {
                next[(token * Utf8Guard.States) + state] = Utf8Guard.Step(state, tokens[token]);
            }
        }
        return new Utf8Transitions(next);
    }

    /// <summary>Runs the sampler's Apply over every token with logit 1; the logits after it.</summary>
    private static float[] Apply(Utf8GuardSampler sampler, int tokens)
    {
        var data = Enumerable.Range(0, tokens).Select(t => new LLamaTokenData((LLamaToken)t, 1, 0)).ToArray();
        using (LLamaTokenDataArrayNative.Create(new LLamaTokenDataArray(data, true), out var native))
        {
            sampler.Apply(ref native);
        }
        return [.. data.Select(d => d.Logit)];
    }

    [Fact]
    public void Apply_AfterALeadByte_OnlyItsValidContinuationsStay()
    {
        // 0: "a", 1: F0 (a 4-byte lead), 2: 9F 98 (a valid continuation after F0), 3: 80 80 (overlong after F0), 4: no bytes.
        var sampler = new Utf8GuardSampler(Vocabulary("a"u8.ToArray(), [0xF0], [0x9F, 0x98], [0x80, 0x80], []));

        Assert.Equal([1f, 1f, float.NegativeInfinity, float.NegativeInfinity, 1f], Apply(sampler, 5));
        sampler.Accept((LLamaToken)1);
        Assert.Equal([float.NegativeInfinity, float.NegativeInfinity, 1f, float.NegativeInfinity, float.NegativeInfinity], Apply(sampler, 5));
    }

    [Fact]
    public void Apply_EveryCandidateInvalid_LeavesThemAll()
    {
        var sampler = new Utf8GuardSampler(Vocabulary([0x80], [0xFF]));

        Assert.Equal([1f, 1f], Apply(sampler, 2));
    }
}
