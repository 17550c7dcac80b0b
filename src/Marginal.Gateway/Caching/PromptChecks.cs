using System.Text.RegularExpressions;

namespace Marginal.Gateway.Caching;

/// <summary>
/// Checks a semantic match must pass beyond its similarity score, because an embedding barely moves when a number,
/// a negation or a name changes and the answer does: the numbers of both prompts are equal, both negate or neither
/// does, and every capitalised word (a name) of one appears in the other. Each returns the check that failed, or null.
/// </summary>
public static partial class PromptChecks
{
    public const string Numbers = "numbers";
    public const string Negation = "negation";
    public const string Entities = "entities";

    public static readonly string[] All = [Numbers, Negation, Entities];

    private static readonly HashSet<string> NegationWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "without", "cannot", "non",
    };

    /// <summary>The first of <paramref name="checks"/> the two prompts fail, or null when they agree on all.</summary>
    public static string? FirstFailed(string a, string b, IReadOnlyCollection<string> checks)
    {
        foreach (var check in checks)
        {
            var agree = check switch
            {
                Numbers => NumbersOf(a).SequenceEqual(NumbersOf(b)),
                Negation => Negates(a) == Negates(b),
                Entities => NamesAppearIn(a, b) && NamesAppearIn(b, a),
                _ => true,
            };
            if (!agree)
            {
                return check;
            }
        }
        return null;
    }

    /// <summary>The numbers in the text, sorted (a paraphrase may reorder them), with separators removed.</summary>
    internal static List<string> NumbersOf(string text)
    {
        var numbers = new List<string>();
        foreach (Match match in NumberPattern().Matches(text))
        {
            numbers.Add(match.Value.Replace(",", "", StringComparison.Ordinal).TrimEnd('.'));
        }
        numbers.Sort(StringComparer.Ordinal);
        return numbers;
    }

    internal static bool Negates(string text)
    {
        foreach (Match word in WordPattern().Matches(text))
        {
            if (NegationWords.Contains(word.Value) || word.Value.EndsWith("n't", StringComparison.OrdinalIgnoreCase) || word.Value.EndsWith("n’t", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>True when each capitalised word of <paramref name="from"/> that does not open a sentence occurs in <paramref name="within"/>, in any case.</summary>
    private static bool NamesAppearIn(string from, string within)
    {
        HashSet<string>? words = null;
        var sentenceStart = true;
        foreach (Match match in WordPattern().Matches(from))
        {
            var word = match.Value;
            var opens = sentenceStart;
            var end = match.Index + match.Length;
            sentenceStart = NextIsSentenceEnd(from, end);
            if (opens || word == "I" || !char.IsUpper(word[0]))
            {
                continue;
            }
            words ??= new HashSet<string>(WordPattern().Matches(within).Select(m => m.Value), StringComparer.OrdinalIgnoreCase);
            if (!words.Contains(word))
            {
                return false;
            }
        }
        return true;
    }

    private static bool NextIsSentenceEnd(string text, int end)
    {
        var rest = text.AsSpan(end).TrimStart(" \"')”’");
        return rest.Length > 0 && rest[0] is '.' or '?' or '!' or ':' or '\n';
    }

    [GeneratedRegex(@"\d+(?:[.,]\d+)*")]
    private static partial Regex NumberPattern();

    [GeneratedRegex(@"[\p{L}\p{N}][\p{L}\p{N}'’\-]*")]
    private static partial Regex WordPattern();
}
