using System.Runtime.InteropServices;
using Marginal.Local.Gguf;

namespace Marginal.Local.TestModels;

/// <summary>Shapes of the self-made test model.</summary>
/// <param name="Embedding">Width of the residual stream (llama.embedding_length).</param>
/// <param name="Layers">Transformer blocks (llama.block_count).</param>
/// <param name="FeedForward">Hidden width of each block's SwiGLU feed-forward (llama.feed_forward_length).</param>
/// <param name="Heads">Attention heads (llama.attention.head_count); no grouped-query attention.</param>
/// <param name="ContextLength">Trained context the file declares (llama.context_length).</param>
public sealed record TestModelShape(int Embedding, int Layers, int FeedForward, int Heads, int ContextLength)
{
    /// <summary>About 6.6M parameters, 14 MB in F16 (most of it the two 50,257-row embedding matrices): loads and decodes fast enough for unit tests.</summary>
    public static readonly TestModelShape Tiny = new(64, 2, 256, 4, 2048);

    /// <summary>About 29M parameters, 60 MB in F16: big enough that batching pays off, for benchmarks (docs/benchmarks.md, section 6).</summary>
    public static readonly TestModelShape Small = new(256, 4, 768, 8, 2048);

    /// <summary>
    /// About 162M parameters (GPT-2 small's width and depth), 310 MiB in F16: weights far larger than a CPU's caches, so
    /// decode streams them from memory as a real model's does; for the quantization benchmark (docs/benchmarks.md, section 6).
    /// </summary>
    public static readonly TestModelShape Medium = new(768, 12, 2048, 12, 2048);

    public static TestModelShape? Named(string name) => name switch
    {
        "tiny" => Tiny,
        "small" => Small,
        "medium" => Medium,
        _ => null,
    };
}

/// <summary>
/// Writes a GGUF v3 model of the Llama architecture with seeded random weights and GPT-2's BPE vocabulary,
/// so tests and benchmarks run a real model through llama.cpp with no download. Its output is gibberish by design.
/// Two choices make it useful for measurement: the end-of-text row of the output matrix is zero, so its logit
/// is 0 while the largest of 50,257 random logits is several standard deviations above it, and generation runs
/// to max_tokens (equal-length sequences); and the output weights are large enough that the top logits are
/// well apart, so greedy decoding does not flip between runs on rounding noise.
/// </summary>
public static class TestModelWriter
{
    /// <summary>
    /// A Llama-2 chat template, so the file carries tokenizer.chat_template as real chat models do
    /// (llama.cpp recognises it by its "[INST]" marker).
    /// </summary>
    public const string LlamaChatTemplate =
        "{% for message in messages %}{% if message['role'] == 'system' %}<<SYS>>\n{{ message['content'] }}\n<</SYS>>\n\n"
        + "{% elif message['role'] == 'user' %}[INST] {{ message['content'] }} [/INST]{% else %}{{ message['content'] }}{% endif %}{% endfor %}";

    // Standard deviation of the random weights. Hidden layers: 1/sqrt(fan_in) (LeCun initialisation), which keeps
    // activations at unit scale through each projection, so attention and feed-forward change the residual stream
    // as much as the token embedding does and the output depends on the whole context, not just the last token.
    // Output: 0.5, so a normalised hidden state (entries near 1) gives logits with standard deviation
    // 0.5 × sqrt(embedding) — 4 for the tiny model — and the top logits stand apart.
    private const float OutputStd = 0.5f;

    /// <summary>Writes the model to <paramref name="path"/>; the same seed gives the same bytes.</summary>
    public static void Write(string path, TestModelShape shape, int seed = 42, string? chatTemplate = LlamaChatTemplate)
    {
        var vocab = Gpt2Vocabulary.Load();
        var gguf = new GgufWriter();
        var headDim = shape.Embedding / shape.Heads;
        gguf.Add("general.architecture", "llama");
        gguf.Add("general.name", "marginal-test-" + (shape == TestModelShape.Small ? "small" : shape == TestModelShape.Tiny ? "tiny" : shape == TestModelShape.Medium ? "medium" : $"{shape.Embedding}x{shape.Layers}"));
        gguf.Add("general.file_type", 1u); // LLAMA_FTYPE_MOSTLY_F16
        gguf.Add("general.alignment", (uint)GgufWriter.Alignment);
        gguf.Add("llama.context_length", (uint)shape.ContextLength);
        gguf.Add("llama.embedding_length", (uint)shape.Embedding);
        gguf.Add("llama.block_count", (uint)shape.Layers);
        gguf.Add("llama.feed_forward_length", (uint)shape.FeedForward);
        gguf.Add("llama.attention.head_count", (uint)shape.Heads);
        gguf.Add("llama.attention.head_count_kv", (uint)shape.Heads);
        gguf.Add("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        gguf.Add("llama.rope.dimension_count", (uint)headDim);
        gguf.Add("llama.rope.freq_base", 10000f);
        gguf.Add("llama.vocab_size", (uint)vocab.Tokens.Count);
        gguf.Add("tokenizer.ggml.model", "gpt2");
        gguf.Add("tokenizer.ggml.pre", "gpt-2");
        gguf.Add("tokenizer.ggml.tokens", vocab.Tokens);
        // token_type: 1 normal, 3 control (llama.h, enum llama_token_type).
        gguf.Add("tokenizer.ggml.token_type", Enumerable.Range(0, vocab.Tokens.Count).Select(id => id == vocab.EndOfTextId ? 3 : 1).ToArray());
        gguf.Add("tokenizer.ggml.merges", vocab.Merges);
        gguf.Add("tokenizer.ggml.bos_token_id", (uint)vocab.EndOfTextId);
        gguf.Add("tokenizer.ggml.eos_token_id", (uint)vocab.EndOfTextId);
        gguf.Add("tokenizer.ggml.add_bos_token", false);
        if (chatTemplate is not null)
        {
            gguf.Add("tokenizer.chat_template", chatTemplate);
        }

        var random = new Random(seed);
        long vocabSize = vocab.Tokens.Count;
        long d = shape.Embedding;
        long ff = shape.FeedForward;
        gguf.AddTensor("token_embd.weight", [d, vocabSize], GgmlType.F16, s => WriteNormal(s, random, d * vocabSize, 1f));
        gguf.AddTensor("output_norm.weight", [d], GgmlType.F32, s => WriteOnes(s, d));
        gguf.AddTensor("output.weight", [d, vocabSize], GgmlType.F16, s =>
        {
            // Row by row so the end-of-text row can be written as zeros (see the class comment).
            for (var row = 0; row < vocabSize; row++)
            {
                WriteNormal(s, random, d, row == vocab.EndOfTextId ? 0f : OutputStd);
            }
        });
        for (var layer = 0; layer < shape.Layers; layer++)
        {
            var b = $"blk.{layer}.";
            gguf.AddTensor(b + "attn_norm.weight", [d], GgmlType.F32, s => WriteOnes(s, d));
            gguf.AddTensor(b + "attn_q.weight", [d, d], GgmlType.F16, s => WriteNormal(s, random, d * d, 1f / MathF.Sqrt(d)));
            gguf.AddTensor(b + "attn_k.weight", [d, d], GgmlType.F16, s => WriteNormal(s, random, d * d, 1f / MathF.Sqrt(d)));
            gguf.AddTensor(b + "attn_v.weight", [d, d], GgmlType.F16, s => WriteNormal(s, random, d * d, 1f / MathF.Sqrt(d)));
            gguf.AddTensor(b + "attn_output.weight", [d, d], GgmlType.F16, s => WriteNormal(s, random, d * d, 1f / MathF.Sqrt(d)));
            gguf.AddTensor(b + "ffn_norm.weight", [d], GgmlType.F32, s => WriteOnes(s, d));
            gguf.AddTensor(b + "ffn_gate.weight", [d, ff], GgmlType.F16, s => WriteNormal(s, random, d * ff, 1f / MathF.Sqrt(d)));
            gguf.AddTensor(b + "ffn_up.weight", [d, ff], GgmlType.F16, s => WriteNormal(s, random, d * ff, 1f / MathF.Sqrt(d)));
            gguf.AddTensor(b + "ffn_down.weight", [ff, d], GgmlType.F16, s => WriteNormal(s, random, ff * d, 1f / MathF.Sqrt(ff)));
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }
        // Written under a temporary name and moved, so a reader never sees half a model.
        var partial = path + ".partial";
        using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            gguf.WriteTo(file);
        }
        File.Move(partial, path, overwrite: true);
    }

    private static void WriteOnes(Stream stream, long count)
    {
        var one = BitConverter.GetBytes(1f);
        for (long i = 0; i < count; i++)
        {
            stream.Write(one);
        }
    }

    /// <summary>Writes <paramref name="count"/> F16 values from N(0, std²) by the Box–Muller transform.</summary>
    private static void WriteNormal(Stream stream, Random random, long count, float std)
    {
        var buffer = new Half[4096];
        var bytes = MemoryMarshal.AsBytes(buffer.AsSpan());
        for (long done = 0; done < count; done += buffer.Length)
        {
            var n = (int)Math.Min(buffer.Length, count - done);
            for (var i = 0; i < n; i++)
            {
                var u1 = 1.0 - random.NextDouble();
                var u2 = random.NextDouble();
                buffer[i] = (Half)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2));
            }
            stream.Write(bytes[..(n * 2)]);
        }
    }
}
