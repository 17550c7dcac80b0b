using System.Numerics.Tensors;

namespace Marginal.Lab.Caching;

/// <summary>
/// A text's contextual token vectors for alignment (<see cref="TokenAlignment"/>): one L2-normalised row per WordPiece
/// token, the special [CLS] and [SEP] left out, each row tagged with the word it belongs to (a piece "##x" continues the
/// word before it), and the sentence vector the same model output gives when mean-pooled. Immutable.
/// </summary>
public sealed class TokenVectors
{
    private readonly float[] _vectors;
    private readonly int[] _wordOf;
    private readonly string[] _words;

    /// <param name="words">The words, in order.</param>
    /// <param name="wordOf">For each token, the position of its word in <paramref name="words"/>.</param>
    /// <param name="vectors">The tokens' rows laid end to end (<paramref name="wordOf"/>.Length × <paramref name="dimensions"/>), each of unit length.</param>
    /// <param name="dimensions">The row length.</param>
    /// <param name="sentenceVector">The mean-pooled, normalised sentence vector; empty when not known.</param>
    public TokenVectors(string[] words, int[] wordOf, float[] vectors, int dimensions, float[]? sentenceVector = null)
    {
        if (vectors.Length != wordOf.Length * dimensions || wordOf.Any(w => w < 0 || w >= words.Length))
        {
            throw new ArgumentException("vectors must hold one row per token and every token a word", nameof(vectors));
        }
        (_words, _wordOf, _vectors, Dimensions, SentenceVector) = (words, wordOf, vectors, dimensions, sentenceVector ?? []);
    }

    /// <summary>Tokens, special tokens excluded.</summary>
    public int Count => _wordOf.Length;

    /// <summary>The row length.</summary>
    public int Dimensions { get; }

    /// <summary>The words the tokens make up (lower-cased WordPiece words: punctuation is a word of its own).</summary>
    public IReadOnlyList<string> Words => _words;

    /// <summary>The mean of the model's output over every position ([CLS] and [SEP] included), normalised: the sentence embedding.</summary>
    public float[] SentenceVector { get; }

    /// <summary>The bytes the rows take as float32 (what a cache entry would store per prompt).</summary>
    public int Bytes => _vectors.Length * sizeof(float);

    /// <summary>The position in <see cref="Words"/> of token <paramref name="token"/>'s word.</summary>
    public int WordOf(int token) => _wordOf[token];

    /// <summary>Token <paramref name="token"/>'s unit row.</summary>
    public ReadOnlySpan<float> Vector(int token) => _vectors.AsSpan(token * Dimensions, Dimensions);

    /// <summary>
    /// Builds the vectors from a model's hidden states for one text: <paramref name="tokens"/> are its pieces in order
    /// ([CLS] and [SEP] included), <paramref name="hidden"/> one row of <paramref name="dimensions"/> per piece.
    /// </summary>
    public static TokenVectors FromHiddenStates(IReadOnlyList<(string Piece, int Id)> tokens, ReadOnlySpan<float> hidden, int dimensions)
    {
        var sentence = new float[dimensions];
        var words = new List<string>();
        var wordOf = new List<int>();
        var rows = new List<float>(tokens.Count * dimensions);
        for (var p = 0; p < tokens.Count; p++)
        {
            var row = hidden.Slice(p * dimensions, dimensions);
            TensorPrimitives.Add(sentence, row, sentence);
            var piece = tokens[p].Piece;
            if (piece is "[CLS]" or "[SEP]" or "[PAD]")
            {
                continue;
            }
            if (piece.StartsWith("##", StringComparison.Ordinal) && words.Count > 0)
            {
                words[^1] += piece[2..];
            }
            else
            {
                words.Add(piece);
            }
            wordOf.Add(words.Count - 1);
            var start = rows.Count;
            rows.AddRange(row);
            var norm = TensorPrimitives.Norm(row);
            for (var d = 0; d < dimensions && norm > 0; d++)
            {
                rows[start + d] /= norm;
            }
        }
        var sentenceNorm = TensorPrimitives.Norm(sentence);
        if (sentenceNorm > 0)
        {
            TensorPrimitives.Divide(sentence, sentenceNorm, sentence);
        }
        return new TokenVectors([.. words], [.. wordOf], [.. rows], dimensions, sentence);
    }
}
