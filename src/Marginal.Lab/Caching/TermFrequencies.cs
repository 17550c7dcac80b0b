using System.Text.RegularExpressions;

namespace Marginal.Lab.Caching;

/// <summary>
/// Document frequencies of word tokens over the cached prompts of one scope, kept up to date as entries are added and
/// evicted (<see cref="Add"/> and <see cref="Remove"/> are exact inverses, so the table always equals one built from
/// scratch over the entries present), and the lexical measures of a query against a cached prompt built on them:
/// IDF-weighted Jaccard overlap, and the share of the cached prompt's special tokens (identifiers, paths, numbers,
/// acronyms) that the query repeats. A paraphrase keeps the rare words and the identifiers; a near-duplicate entry
/// about another thing differs in exactly those. Not thread-safe: the owner locks.
/// </summary>
public sealed partial class TermFrequencies
{
    private readonly Dictionary<string, int> _documents = new(StringComparer.Ordinal);

    /// <summary>Prompts counted.</summary>
    public int Count { get; private set; }

    /// <summary>Counts each distinct token of <paramref name="text"/> once.</summary>
    public void Add(string text)
    {
        foreach (var token in TokensOf(text))
        {
            _documents[token] = _documents.GetValueOrDefault(token) + 1;
        }
        Count++;
    }

    /// <summary>Uncounts a prompt earlier given to <see cref="Add"/>; the caller guarantees it was added.</summary>
    public void Remove(string text)
    {
        foreach (var token in TokensOf(text))
        {
            if (_documents.TryGetValue(token, out var count))
            {
                if (count <= 1)
                {
                    _documents.Remove(token);
                }
                else
                {
                    _documents[token] = count - 1;
                }
            }
        }
        Count = Math.Max(0, Count - 1);
    }

    /// <summary>Prompts that contain <paramref name="token"/>.</summary>
    public int DocumentFrequency(string token) => _documents.GetValueOrDefault(token);

    /// <summary>Smoothed inverse document frequency, ln((N + 1) / (df + 1)) + 1 (scikit-learn's smooth_idf form): a token in no prompt weighs most, one in all prompts weighs 1.</summary>
    public double Idf(string token) => Math.Log((Count + 1.0) / (DocumentFrequency(token) + 1.0)) + 1;

    /// <summary>Σ idf over the shared tokens / Σ idf over the union; 0 when both are empty.</summary>
    public double WeightedJaccard(IReadOnlySet<string> a, IReadOnlySet<string> b)
    {
        double shared = 0, union = 0;
        foreach (var token in a)
        {
            var idf = Idf(token);
            union += idf;
            if (b.Contains(token))
            {
                shared += idf;
            }
        }
        foreach (var token in b)
        {
            if (!a.Contains(token))
            {
                union += Idf(token);
            }
        }
        return union == 0 ? 0 : shared / union;
    }

    /// <summary>The share of <paramref name="cached"/>'s special tokens found among <paramref name="query"/>'s; 1 when it has none.</summary>
    public static double Coverage(IReadOnlySet<string> query, IReadOnlySet<string> cached)
    {
        if (cached.Count == 0)
        {
            return 1;
        }
        var found = 0;
        foreach (var token in cached)
        {
            if (query.Contains(token))
            {
                found++;
            }
        }
        return (double)found / cached.Count;
    }

    /// <summary>The distinct word tokens: backticked spans and runs of [A-Za-z0-9_./-], lower-cased, without leading or trailing '.', '-' or '/'.</summary>
    public static HashSet<string> TokensOf(string text)
    {
        var tokens = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match match in TokenPattern().Matches(text))
        {
            var token = match.Value.Trim('`').ToLowerInvariant().Trim('.', '-', '/');
            if (token.Length > 0)
            {
                tokens.Add(token);
            }
        }
        return tokens;
    }

    /// <summary>
    /// The tokens that name one thing rather than describe it, lower-cased: backticked spans, tokens with '_', '.' or
    /// '/', camelCase, ALLCAPS and numbers.
    /// </summary>
    public static HashSet<string> SpecialTokensOf(string text)
    {
        var tokens = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match match in BacktickPattern().Matches(text))
        {
            tokens.Add(match.Groups[1].Value.ToLowerInvariant());
        }
        foreach (Match match in SpecialPattern().Matches(text))
        {
            tokens.Add(match.Value.ToLowerInvariant().Trim('.'));
        }
        return tokens;
    }

    [GeneratedRegex(@"`[^`]+`|[A-Za-z0-9_./\-]+")]
    private static partial Regex TokenPattern();

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex BacktickPattern();

    [GeneratedRegex(@"[A-Za-z0-9]*[_./][A-Za-z0-9_./]+|[a-z]+[A-Z][A-Za-z0-9]*|[A-Z]{2,}[A-Za-z0-9]*|\d+(?:\.\d+)*")]
    private static partial Regex SpecialPattern();
}
