using System.Security.Cryptography;
using System.Text;
using Marginal.Gateway.Embeddings;

namespace Marginal.Lab.Routing;

/// <summary>
/// Prompt embeddings for training and evaluation, computed once and kept in a file keyed by the SHA-256 of the prompts
/// and the embedding model, so a rerun over the same data reads them back in milliseconds. The file is raw
/// little-endian floats after a count and a dimension; a file that does not match is recomputed.
/// </summary>
public static class EmbeddingCache
{
    /// <summary>The default folder: <c>marginal-router-embeddings</c> under the system's temp folder.</summary>
    public static string DefaultFolder => Path.Combine(Path.GetTempPath(), "marginal-router-embeddings");

    /// <summary>The embedding of each prompt, in order. <paramref name="progress"/> hears (done, total) while computing.</summary>
    public static float[][] Embed(IReadOnlyList<string> prompts, string? folder = null, Action<int, int>? progress = null, CancellationToken cancellationToken = default)
    {
        folder ??= DefaultFolder;
        var file = Path.Combine(folder, Key(prompts) + ".f32");
        if (TryRead(file, prompts.Count) is { } cached)
        {
            return cached;
        }
        var vectors = new float[prompts.Count][];
        const int batch = 32;
        for (var i = 0; i < prompts.Count; i += batch)
        {
            var count = Math.Min(batch, prompts.Count - i);
            var part = MiniLmEmbeddingGenerator.Shared.Embed([.. prompts.Skip(i).Take(count)], cancellationToken);
            part.CopyTo(vectors, i);
            progress?.Invoke(i + count, prompts.Count);
        }
        Directory.CreateDirectory(folder);
        var temp = file + ".tmp";
        using (var output = new BinaryWriter(File.Create(temp)))
        {
            output.Write(vectors.Length);
            output.Write(MiniLmEmbeddingGenerator.Dimensions);
            foreach (var vector in vectors)
            {
                foreach (var x in vector)
                {
                    output.Write(x);
                }
            }
        }
        File.Move(temp, file, overwrite: true);
        return vectors;
    }

    private static string Key(IReadOnlyList<string> prompts)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(MiniLmEmbeddingGenerator.ModelId));
        foreach (var prompt in prompts)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(prompt));
            hash.AppendData([0]);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static float[][]? TryRead(string file, int count)
    {
        if (!File.Exists(file))
        {
            return null;
        }
        using var input = new BinaryReader(File.OpenRead(file));
        if (input.BaseStream.Length != 8 + (long)count * MiniLmEmbeddingGenerator.Dimensions * 4
            || input.ReadInt32() != count || input.ReadInt32() != MiniLmEmbeddingGenerator.Dimensions)
        {
            return null;
        }
        var vectors = new float[count][];
        for (var i = 0; i < count; i++)
        {
            var bytes = input.ReadBytes(MiniLmEmbeddingGenerator.Dimensions * 4);
            vectors[i] = new float[MiniLmEmbeddingGenerator.Dimensions];
            Buffer.BlockCopy(bytes, 0, vectors[i], 0, bytes.Length);
        }
        return vectors;
    }
}
