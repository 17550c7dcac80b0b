using System.Text;

namespace Marginal.Local.Gguf;

/// <summary>ggml tensor types this writer emits (values from ggml.h, <c>enum ggml_type</c>).</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
}

/// <summary>
/// Writes a GGUF version 3 file: header, key/value metadata, tensor descriptors, then tensor data aligned to
/// <see cref="Alignment"/> bytes. Layout from ggml's docs/gguf.md; all integers little-endian.
/// Not thread-safe; tensors are written in the order they were added.
/// </summary>
public sealed class GgufWriter
{
    /// <summary>general.alignment's default; every tensor's data offset is a multiple of it.</summary>
    public const int Alignment = 32;

    // GGUF metadata value types (gguf.md, enum gguf_metadata_value_type).
    private const uint TypeUInt32 = 4;
    private const uint TypeInt32 = 5;
    private const uint TypeFloat32 = 6;
    private const uint TypeBool = 7;
    private const uint TypeString = 8;
    private const uint TypeArray = 9;

    private readonly List<(string Key, Action<BinaryWriter> Write)> _metadata = [];
    private readonly List<Tensor> _tensors = [];

    private sealed record Tensor(string Name, long[] Shape, GgmlType Type, Action<Stream> WriteData)
    {
        public long ByteCount => Shape.Aggregate(1L, (a, b) => a * b) * (Type == GgmlType.F32 ? 4 : 2);
    }

    public void Add(string key, string value) => _metadata.Add((key, w => { w.Write(TypeString); WriteString(w, value); }));

    public void Add(string key, uint value) => _metadata.Add((key, w => { w.Write(TypeUInt32); w.Write(value); }));

    public void Add(string key, float value) => _metadata.Add((key, w => { w.Write(TypeFloat32); w.Write(value); }));

    public void Add(string key, bool value) => _metadata.Add((key, w => { w.Write(TypeBool); w.Write(value); }));

    public void Add(string key, IReadOnlyList<string> values) => _metadata.Add((key, w =>
    {
        w.Write(TypeArray);
        w.Write(TypeString);
        w.Write((ulong)values.Count);
        foreach (var value in values)
        {
            WriteString(w, value);
        }
    }));

    public void Add(string key, IReadOnlyList<int> values) => _metadata.Add((key, w =>
    {
        w.Write(TypeArray);
        w.Write(TypeInt32);
        w.Write((ulong)values.Count);
        foreach (var value in values)
        {
            w.Write(value);
        }
    }));

    /// <summary>
    /// Adds a tensor. <paramref name="shape"/> is in ggml order (ne0 first: the contiguous dimension);
    /// <paramref name="writeData"/> must write exactly the tensor's bytes.
    /// </summary>
    public void AddTensor(string name, long[] shape, GgmlType type, Action<Stream> writeData) =>
        _tensors.Add(new Tensor(name, shape, type, writeData));

    public void WriteTo(Stream stream)
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write("GGUF"u8);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, write) in _metadata)
        {
            WriteString(w, key);
            write(w);
        }
        long offset = 0;
        foreach (var tensor in _tensors)
        {
            WriteString(w, tensor.Name);
            w.Write((uint)tensor.Shape.Length);
            foreach (var dim in tensor.Shape)
            {
                w.Write((ulong)dim);
            }
            w.Write((uint)tensor.Type);
            w.Write((ulong)offset);
            offset = Align(offset + tensor.ByteCount);
        }
        w.Flush();
        Pad(stream);
        foreach (var tensor in _tensors)
        {
            var start = stream.Position;
            tensor.WriteData(stream);
            if (stream.Position - start != tensor.ByteCount)
            {
                throw new InvalidOperationException($"Tensor {tensor.Name} wrote {stream.Position - start} bytes, expected {tensor.ByteCount}.");
            }
            Pad(stream);
        }
    }

    private static long Align(long offset) => (offset + Alignment - 1) / Alignment * Alignment;

    private static void Pad(Stream stream)
    {
        var padding = (int)(Align(stream.Position) - stream.Position);
        Span<byte> zeros = stackalloc byte[Alignment];
        stream.Write(zeros[..padding]);
    }

    private static void WriteString(BinaryWriter w, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }
}
