using System.Collections.Concurrent;
using Microsoft.Extensions.AI;
using Microsoft.ML.Tokenizers;

namespace Marginal.Gateway.Tokens;

/// <summary>
/// Counts tokens with Microsoft.ML.Tokenizers when a provider reports no usage. Text is counted exactly for the
/// encoding; a chat prompt adds OpenAI's published framing overhead of 3 tokens per message plus 3 to prime the reply
/// (OpenAI cookbook, "How to count tokens with tiktoken", for gpt-3.5-turbo-0613 and later), so a counted prompt is an
/// estimate within a few tokens of what the provider would bill. Thread-safe; tokenizers are loaded once per encoding.
/// </summary>
public static class TokenCounter
{
    public const int TokensPerMessage = 3;
    public const int TokensToPrimeReply = 3;

    private static readonly ConcurrentDictionary<string, Tokenizer> Tokenizers = new(StringComparer.Ordinal);

    /// <summary>The tokenizer for <paramref name="encoding"/> (<c>o200k_base</c>, <c>cl100k_base</c>); any other name, a GGUF vocabulary included, uses o200k_base.</summary>
    public static Tokenizer For(string? encoding) =>
        Tokenizers.GetOrAdd(encoding == "cl100k_base" ? "cl100k_base" : "o200k_base", static name => TiktokenTokenizer.CreateForEncoding(name));

    /// <summary>Tokens in <paramref name="text"/>.</summary>
    public static long CountText(string? encoding, string? text) =>
        string.IsNullOrEmpty(text) ? 0 : For(encoding).CountTokens(text);

    /// <summary>Tokens of a chat prompt: every message's text plus the framing overhead.</summary>
    public static long CountPrompt(string? encoding, IEnumerable<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var tokenizer = For(encoding);
        long total = TokensToPrimeReply;
        foreach (var message in messages)
        {
            total += TokensPerMessage + tokenizer.CountTokens(message.Role.Value);
            var text = message.Text;
            if (text.Length > 0)
            {
                total += tokenizer.CountTokens(text);
            }
        }
        return total;
    }
}
