using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Marginal.Testing;

/// <summary>
/// An emulated provider prompt cache, after OpenAI's documented behaviour
/// (https://platform.openai.com/docs/guides/prompt-caching, read 2026-11-28): the prompt is the tool definitions,
/// then the messages; a request whose prompt shares a prefix of at least 1,024 tokens with a recent request's reports
/// that prefix, rounded down to a multiple of 128 tokens, as <c>cached_tokens</c>. Tokens here are words and
/// punctuation marks (not a real tokenizer); the prompt's token count is reported from the same split, so
/// cached ÷ prompt is a faithful share.
/// </summary>
public sealed partial class FakeUpstream
{
    private const int CacheMinimum = 1024;
    private const int CacheStep = 128;
    private const int CacheEntries = 256;
    private readonly LinkedList<string[]> _promptCache = new();

    /// <summary>When true, chat completions report <c>cached_tokens</c> from the emulated prompt cache (and count tools in the prompt).</summary>
    public bool EmulatePromptCache { get; set; }

    /// <summary>The text of a message's <c>content</c> as received (a string, or the text of its parts).</summary>
    public static string ContentTextOf(JsonNode? content) => ContentText(content);

    [GeneratedRegex(@"\w+|[^\w\s]")]
    private static partial Regex TokenPattern();

    private Reply WithPromptCache(JsonNode request, Reply reply)
    {
        var tokens = new List<string>();
        foreach (var tool in request["tools"]?.AsArray() ?? [])
        {
            tokens.AddRange(TokenPattern().Matches(tool!.ToJsonString()).Select(m => m.Value));
        }
        foreach (var message in request["messages"]!.AsArray())
        {
            tokens.Add("<|" + message!["role"] + "|>");
            tokens.AddRange(TokenPattern().Matches(ContentText(message["content"])).Select(m => m.Value));
        }
        var prompt = tokens.ToArray();
        long longest = 0;
        lock (_promptCache)
        {
            foreach (var earlier in _promptCache)
            {
                var n = 0;
                while (n < earlier.Length && n < prompt.Length && earlier[n] == prompt[n])
                {
                    n++;
                }
                longest = Math.Max(longest, n);
            }
            _promptCache.AddFirst(prompt);
            if (_promptCache.Count > CacheEntries)
            {
                _promptCache.RemoveLast();
            }
        }
        var cached = longest >= CacheMinimum ? longest / CacheStep * CacheStep : 0;
        return reply with { PromptTokens = prompt.Length, CachedPromptTokens = cached };
    }
}
