using Marginal.Gateway.Tokens;
using Microsoft.Extensions.AI;
using Microsoft.ML.Tokenizers;

namespace Marginal.Gateway.Tests.Metering;

public sealed class TokenCounterTests
{
    // A fixed corpus: prose, code, numbers, non-Latin scripts and emoji, where encodings differ most.
    public static TheoryData<string, string> Corpus => new()
    {
        { "o200k_base", "The quick brown fox jumps over the lazy dog." },
        { "o200k_base", "public static decimal Cost(TokenUsage usage, ModelPrice price) => usage.OutputTokens * price.Output;" },
        { "o200k_base", "Σήμερα είναι 27 Νοεμβρίου 2026 — 今日は良い天気です 🌤️" },
        { "cl100k_base", "The quick brown fox jumps over the lazy dog." },
        { "cl100k_base", "SELECT tenant, SUM(cost_usd) FROM usage_records GROUP BY tenant;" },
        { "cl100k_base", "Σήμερα είναι 27 Νοεμβρίου 2026 — 今日は良い天気です 🌤️" },
    };

    [Theory]
    [MemberData(nameof(Corpus))]
    public void CountText_FixedCorpus_EqualsMicrosoftMLTokenizers(string encoding, string text)
    {
        var expected = TiktokenTokenizer.CreateForEncoding(encoding).EncodeToIds(text).Count;

        Assert.Equal(expected, TokenCounter.CountText(encoding, text));
    }

    [Fact]
    public void CountText_CookbookExample_IsSixTokensInCl100k()
    {
        // OpenAI cookbook, "How to count tokens with tiktoken": "tiktoken is great!" is 6 tokens in cl100k_base.
        Assert.Equal(6, TokenCounter.CountText("cl100k_base", "tiktoken is great!"));
    }

    [Fact]
    public void CountPrompt_TwoMessages_AddsFramingPerMessageAndReplyPrimer()
    {
        ChatMessage[] messages = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "Hello there")];
        var tokenizer = TiktokenTokenizer.CreateForEncoding("o200k_base");
        var text = tokenizer.CountTokens("Be brief.") + tokenizer.CountTokens("Hello there") + tokenizer.CountTokens("system") + tokenizer.CountTokens("user");

        Assert.Equal(text + 2 * TokenCounter.TokensPerMessage + TokenCounter.TokensToPrimeReply, TokenCounter.CountPrompt("o200k_base", messages));
    }

    [Fact]
    public void For_UnknownEncoding_UsesO200k()
    {
        Assert.Equal(TokenCounter.CountText("o200k_base", "gguf vocabularies count as o200k"), TokenCounter.CountText("gguf", "gguf vocabularies count as o200k"));
    }
}
