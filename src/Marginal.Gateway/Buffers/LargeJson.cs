using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Marginal.Gateway.Buffers;

/// <summary>
/// Writing JSON that may hold a message of megabytes without a buffer of megabytes per copy. <see cref="Utf8JsonWriter"/>
/// asks its output for three bytes per character of a string before writing it (the worst UTF-8 expansion), so one
/// 7-million-character message made a 21 MB array per serialisation, twice per request (the cache key and the upstream
/// body), all garbage on the large object heap. Long strings are written in segments instead, into pooled buffers.
/// </summary>
public static class LargeJson
{
    /// <summary>Characters per segment: at most 48 KiB of UTF-8, well under the large object heap's threshold.</summary>
    private const int SegmentChars = 16 * 1024;

    /// <summary>Writes <paramref name="value"/> as the value of the property just named, in segments when it is long.</summary>
    public static void WriteString(Utf8JsonWriter json, ReadOnlySpan<byte> name, string? value)
    {
        if (value is null || value.Length <= SegmentChars)
        {
            json.WriteString(name, value);
            return;
        }
        json.WritePropertyName(name);
        WriteStringValue(json, value);
    }

    /// <summary>Writes <paramref name="value"/> as a string value, in segments when it is long.</summary>
    public static void WriteStringValue(Utf8JsonWriter json, string value)
    {
        if (value.Length <= SegmentChars)
        {
            json.WriteStringValue(value);
            return;
        }
        var rest = value.AsSpan();
        while (rest.Length > SegmentChars)
        {
            // Never split a surrogate pair between segments.
            var take = char.IsHighSurrogate(rest[SegmentChars - 1]) ? SegmentChars - 1 : SegmentChars;
            json.WriteStringValueSegment(rest[..take], isFinalSegment: false);
            rest = rest[take..];
        }
        json.WriteStringValueSegment(rest, isFinalSegment: true);
    }
}

/// <summary>An <see cref="IBufferWriter{T}"/> over arrays rented from <see cref="ArrayPool{T}.Shared"/>; dispose to return them.</summary>
public sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(4096);
    private int _written;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void Ensure(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length)
        {
            return;
        }
        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
        _buffer.AsSpan(0, _written).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>
/// An <see cref="IBufferWriter{T}"/> that hashes what is written and keeps nothing but one pooled scratch buffer (as
/// large as the largest string written asks for: a long string is then a rented array, not large-object-heap garbage).
/// </summary>
public sealed class HashingBufferWriter : IBufferWriter<byte>, IDisposable
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);

    public void Advance(int count) => _hash.AppendData(_buffer, 0, count);

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer;
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer;
    }

    private void Ensure(int sizeHint)
    {
        if (sizeHint > _buffer.Length)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(sizeHint);
        }
    }

    /// <summary>SHA-256 of everything advanced so far.</summary>
    public byte[] Hash() => _hash.GetHashAndReset();

    public void Dispose()
    {
        _hash.Dispose();
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>A request body held in a <see cref="PooledBufferWriter"/>, returned to the pool when the request is disposed.</summary>
public sealed class PooledJsonContent : HttpContent
{
    private static readonly MediaTypeHeaderValue JsonType = new("application/json");
    private readonly PooledBufferWriter _body;

    // The owner's reference plus one per send in progress: the buffer goes back to the pool only when the last of them
    // ends, so a send the handler still runs after the request was disposed never reads a returned array.
    private int _users = 1;
    private int _disposed;

    public PooledJsonContent(PooledBufferWriter body)
    {
        _body = body;
        Headers.ContentType = JsonType;
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        Use();
        try
        {
            await stream.WriteAsync(_body.WrittenMemory, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Release();
        }
    }

    protected override void SerializeToStream(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        Use();
        try
        {
            stream.Write(_body.WrittenMemory.Span);
        }
        finally
        {
            Release();
        }
    }

    private void Use()
    {
        if (Interlocked.Increment(ref _users) == 1)
        {
            Release();
            throw new ObjectDisposedException(nameof(PooledJsonContent));
        }
    }

    private void Release()
    {
        if (Interlocked.Decrement(ref _users) == 0)
        {
            _body.Dispose();
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _body.WrittenMemory.Length;
        return true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Release();
        }
        base.Dispose(disposing);
    }
}
