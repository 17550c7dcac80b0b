using System.Text.Json;
using System.Text.Json.Serialization;

namespace Marginal.Gateway.Wire.OpenAI;

// OpenAI's chat completion request as it arrives on the wire. Field names follow OpenAI's JSON (snake_case
// through the source-generated context). Only shapes are checked here; ChatRequestReader checks values.

public sealed class ChatCompletionRequest
{
    public string? Model { get; set; }
    public List<WireMessage>? Messages { get; set; }
    public bool? Stream { get; set; }
    public StreamOptions? StreamOptions { get; set; }
    public double? Temperature { get; set; }
    public double? TopP { get; set; }
    public int? MaxTokens { get; set; }
    public int? MaxCompletionTokens { get; set; }
    public int? N { get; set; }
    [JsonConverter(typeof(StringOrArrayConverter))]
    public List<string>? Stop { get; set; }
    public double? FrequencyPenalty { get; set; }
    public double? PresencePenalty { get; set; }
    public long? Seed { get; set; }
    public string? User { get; set; }
    public Dictionary<string, string>? Metadata { get; set; }
    public ResponseFormat? ResponseFormat { get; set; }
    public List<WireTool>? Tools { get; set; }
    [JsonConverter(typeof(ToolChoiceConverter))]
    public ToolChoice? ToolChoice { get; set; }
    public bool? ParallelToolCalls { get; set; }
    public string? ReasoningEffort { get; set; }
    public bool? Logprobs { get; set; }
    public int? TopLogprobs { get; set; }
    public Dictionary<string, int>? LogitBias { get; set; }
}

public sealed class StreamOptions
{
    public bool? IncludeUsage { get; set; }
}

public sealed class WireMessage
{
    public string? Role { get; set; }
    [JsonConverter(typeof(MessageContentConverter))]
    public MessageContent? Content { get; set; }
    public string? Name { get; set; }
    public List<WireToolCall>? ToolCalls { get; set; }
    public string? ToolCallId { get; set; }
    public string? Refusal { get; set; }
}

/// <summary>A message's content: a plain string, or a list of typed parts (text, image_url, input_audio, file).</summary>
public sealed class MessageContent
{
    public string? Text { get; init; }
    public List<ContentPart>? Parts { get; init; }
}

public sealed class ContentPart
{
    public string? Type { get; set; }
    public string? Text { get; set; }
    public ImageUrl? ImageUrl { get; set; }
    public InputAudio? InputAudio { get; set; }
    public string? Refusal { get; set; }
}

public sealed class ImageUrl
{
    public string? Url { get; set; }
    public string? Detail { get; set; }
}

public sealed class InputAudio
{
    public string? Data { get; set; }
    public string? Format { get; set; }
}

public sealed class WireToolCall
{
    public string? Id { get; set; }
    public string? Type { get; set; }
    public WireFunctionCall? Function { get; set; }
}

public sealed class WireFunctionCall
{
    public string? Name { get; set; }
    public string? Arguments { get; set; }
}

public sealed class WireTool
{
    public string? Type { get; set; }
    public WireFunction? Function { get; set; }
}

public sealed class WireFunction
{
    public string? Name { get; set; }
    public string? Description { get; set; }
    public JsonElement? Parameters { get; set; }
    public bool? Strict { get; set; }
}

/// <summary><c>"none" | "auto" | "required"</c>, or <c>{"type":"function","function":{"name":…}}</c>.</summary>
public sealed class ToolChoice
{
    public string? Mode { get; init; }
    public string? FunctionName { get; init; }
}

public sealed class ResponseFormat
{
    public string? Type { get; set; }
    public JsonSchemaFormat? JsonSchema { get; set; }
}

public sealed class JsonSchemaFormat
{
    public string? Name { get; set; }
    public string? Description { get; set; }
    public JsonElement? Schema { get; set; }
    public bool? Strict { get; set; }
}

public sealed class EmbeddingRequest
{
    public string? Model { get; set; }
    [JsonConverter(typeof(StringOrArrayConverter))]
    public List<string>? Input { get; set; }
    public string? EncodingFormat { get; set; }
    public int? Dimensions { get; set; }
    public string? User { get; set; }
}
