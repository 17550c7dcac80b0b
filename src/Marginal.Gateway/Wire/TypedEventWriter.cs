using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Marginal.Gateway.Wire;

/// <summary>
/// Server-sent events named by their type, as the Responses and Messages APIs send them:
/// <c>event: {type}\ndata: {"type":"{type}",…}\n\n</c>. One JSON writer is reused for every event of a stream.
/// </summary>
public sealed class TypedEventWriter : IDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };
    private Utf8JsonWriter? _json;

    /// <summary>The stream's JSON writer, pointed at <paramref name="output"/> and empty (also for a whole, non-event body).</summary>
    public Utf8JsonWriter Json(IBufferWriter<byte> output)
    {
        if (_json is null)
        {
            _json = new Utf8JsonWriter(output, WriterOptions);
        }
        else
        {
            _json.Reset(output);
        }
        return _json;
    }

    /// <summary>Starts an event: writes its <c>event:</c> line and opens its data object with <c>type</c>.</summary>
    public Utf8JsonWriter Start(IBufferWriter<byte> output, string type)
    {
        output.Write("event: "u8);
        Encoding.UTF8.GetBytes(type, output);
        output.Write("\ndata: "u8);
        var json = Json(output);
        json.WriteStartObject();
        json.WriteString("type"u8, type);
        return json;
    }

    /// <summary>Closes the event's data object and the event.</summary>
    public static void End(IBufferWriter<byte> output, Utf8JsonWriter json)
    {
        json.WriteEndObject();
        json.Flush();
        output.Write("\n\n"u8);
    }

    public void Dispose() => _json?.Dispose();
}
