using System.Text.Json;
using System.Text.Json.Serialization;

namespace Marginal.Gateway.Wire.OpenAI;

/// <summary>Reads a string or an array of strings (OpenAI's <c>stop</c>, embeddings' <c>input</c>).</summary>
public sealed class StringOrArrayConverter : JsonConverter<List<string>>
{
    public override List<string>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return [reader.GetString()!];
        }
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("expected a string or an array of strings");
        }
        var list = new List<string>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.String)
            {
                throw new JsonException("expected a string or an array of strings");
            }
            list.Add(reader.GetString()!);
        }
        return list;
    }

    public override void Write(Utf8JsonWriter writer, List<string> value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var item in value)
        {
            writer.WriteStringValue(item);
        }
        writer.WriteEndArray();
    }
}

/// <summary>Reads message content: a string, or an array of content parts.</summary>
public sealed class MessageContentConverter : JsonConverter<MessageContent>
{
    public override MessageContent? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType switch
        {
            JsonTokenType.String => new MessageContent { Text = reader.GetString() },
            JsonTokenType.StartArray => new MessageContent { Parts = ReadParts(ref reader) },
            _ => throw new JsonException("expected a string or an array of content parts"),
        };

    // A null element ("content":[null]) would reach the request mapping as a null part; it is malformed input.
    private static List<ContentPart>? ReadParts(ref Utf8JsonReader reader)
    {
        var parts = JsonSerializer.Deserialize(ref reader, WireJsonContext.Default.ListContentPart);
        return parts is not null && parts.Contains(null!) ? throw new JsonException("content parts must be objects, not null") : parts;
    }

    public override void Write(Utf8JsonWriter writer, MessageContent value, JsonSerializerOptions options)
    {
        if (value.Parts is { } parts)
        {
            JsonSerializer.Serialize(writer, parts, WireJsonContext.Default.ListContentPart);
        }
        else
        {
            writer.WriteStringValue(value.Text);
        }
    }
}

/// <summary>Reads <c>tool_choice</c>: a mode string or a named function.</summary>
public sealed class ToolChoiceConverter : JsonConverter<ToolChoice>
{
    public override ToolChoice? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return new ToolChoice { Mode = reader.GetString() };
        }
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("expected \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}");
        }
        using var document = JsonDocument.ParseValue(ref reader);
        var name = document.RootElement.TryGetProperty("function", out var function)
            && function.ValueKind == JsonValueKind.Object
            && function.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String
            ? n.GetString()
            : throw new JsonException("expected {\"type\":\"function\",\"function\":{\"name\":...}}");
        return new ToolChoice { Mode = "function", FunctionName = name };
    }

    public override void Write(Utf8JsonWriter writer, ToolChoice value, JsonSerializerOptions options)
    {
        if (value.FunctionName is null)
        {
            writer.WriteStringValue(value.Mode);
            return;
        }
        writer.WriteStartObject();
        writer.WriteString("type", "function");
        writer.WriteStartObject("function");
        writer.WriteString("name", value.FunctionName);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(EmbeddingRequest))]
[JsonSerializable(typeof(List<ContentPart>))]
public sealed partial class WireJsonContext : JsonSerializerContext;
