using System.Text.Json;
using Marginal.Core.Errors;
using Marginal.Gateway.Wire.OpenAI;

namespace Marginal.Gateway.Wire.Responses;

/// <summary>
/// Reads an OpenAI Responses API request (<c>POST /v1/responses</c>) and translates it into the chat completion
/// request the gateway already serves, so it goes down the same path (admission, metering, cache, routing, capacity)
/// and is recorded and priced the same way. What the response object echoes back is kept in <see cref="ResponsesEcho"/>.
/// Every field the gateway cannot honour is a 400 naming it (<c>param</c>), never dropped: hosted tools, stored
/// responses (<c>store: true</c>, <c>previous_response_id</c>), background mode, reasoning summaries, <c>include</c>.
/// </summary>
public static class ResponsesRequestReader
{
    // Fields accepted as they are, or translated below. Anything else in the body is refused by name.
    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "model", "input", "instructions", "tools", "tool_choice", "text", "max_output_tokens", "temperature", "top_p",
        "reasoning", "metadata", "stream", "stream_options", "store", "previous_response_id", "parallel_tool_calls", "user",
        "safety_identifier", "truncation", "service_tier", "include", "background",
    };

    /// <summary>Parses <paramref name="body"/>; malformed JSON is OpenAI's "could not parse" error.</summary>
    public static ResponsesCall Read(ReadOnlySpan<byte> body)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            throw GatewayException.InvalidRequest(
                "We could not parse the JSON body of your request. The body must be valid JSON (see https://platform.openai.com/docs/api-reference/responses).",
                code: "invalid_json");
        }
        using (document)
        {
            return Translate(document.RootElement);
        }
    }

    /// <summary>Translates a parsed request. The result holds no reference to <paramref name="root"/>'s document.</summary>
    public static ResponsesCall Translate(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.InvalidRequest("The request body must be a JSON object.");
        }
        foreach (var property in root.EnumerateObject())
        {
            if (!Known.Contains(property.Name))
            {
                throw Unsupported(property.Name, $"Unknown or unsupported parameter: '{ClientBounds.Shown(property.Name)}'.");
            }
        }
        var chat = new ChatCompletionRequest
        {
            Model = String(root, "model"),
            Temperature = Number(root, "temperature"),
            TopP = Number(root, "top_p"),
            MaxCompletionTokens = Integer(root, "max_output_tokens"),
            Stream = Bool(root, "stream"),
            ParallelToolCalls = Bool(root, "parallel_tool_calls"),
            User = String(root, "user") ?? String(root, "safety_identifier"),
            Metadata = Metadata(root),
        };
        if (chat.Stream == true)
        {
            // The final response.completed event carries the usage, so the gateway always asks for it.
            chat.StreamOptions = new StreamOptions { IncludeUsage = true };
        }
        else if (root.TryGetProperty("stream_options", out var so) && so.ValueKind != JsonValueKind.Null)
        {
            throw GatewayException.InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", "invalid_value");
        }
        CheckStreamOptions(root);
        RefuseStored(root);
        RefuseUnless(root, "background", v => v.ValueKind is JsonValueKind.False or JsonValueKind.Null, "Background responses are not supported by this gateway; send the request without 'background'.");
        RefuseUnless(root, "truncation", v => v.ValueKind == JsonValueKind.Null || v.ValueKind == JsonValueKind.String && v.GetString() == "disabled",
            "Only 'truncation': 'disabled' is supported: the gateway does not drop input to fit a context window.");
        RefuseUnless(root, "service_tier", v => v.ValueKind == JsonValueKind.Null || v.ValueKind == JsonValueKind.String && v.GetString() is "auto" or "default",
            "Only the 'auto' and 'default' service tiers are supported.");
        RefuseUnless(root, "include", v => v.ValueKind == JsonValueKind.Null || v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0,
            "'include' is not supported: the gateway returns no encrypted reasoning, logprobs or tool-call sources.");

        var messages = new List<WireMessage>();
        if (String(root, "instructions") is { } instructions)
        {
            messages.Add(new WireMessage { Role = "system", Content = new MessageContent { Text = instructions } });
        }
        ReadInput(root, messages);
        chat.Messages = messages;
        chat.Tools = Tools(root);
        chat.ToolChoice = ToolChoiceOf(root);
        chat.ResponseFormat = Format(root);
        chat.ReasoningEffort = Reasoning(root);
        return new ResponsesCall(chat, ResponsesEcho.Of(root));
    }

    /// <summary>
    /// Renames a chat parameter in an error raised by the chat reader to the Responses field it came from, so the
    /// client is told about the field it sent.
    /// </summary>
    public static GatewayException Rename(GatewayException error)
    {
        if (error.Param is not { } param)
        {
            return error;
        }
        var renamed = param switch
        {
            "max_completion_tokens" => "max_output_tokens",
            "reasoning_effort" => "reasoning.effort",
            "stream_options" => "stream_options",
            _ when param.StartsWith("messages", StringComparison.Ordinal) => "input",
            _ when param.StartsWith("response_format", StringComparison.Ordinal) => "text.format",
            _ when param.StartsWith("tools[", StringComparison.Ordinal) => param.Replace(".function.", ".", StringComparison.Ordinal),
            _ => param,
        };
        if (renamed == param)
        {
            return error;
        }
        var message = error.Message.Replace($"'{param}'", $"'{renamed}'", StringComparison.Ordinal);
        return new GatewayException(error.Kind, message, error.Code, renamed) { RetryAfter = error.RetryAfter };
    }

    private static void ReadInput(JsonElement root, List<WireMessage> messages)
    {
        if (!root.TryGetProperty("input", out var input) || input.ValueKind == JsonValueKind.Null)
        {
            throw GatewayException.InvalidRequest("Missing required parameter: 'input'.", "input", "missing_required_parameter");
        }
        if (input.ValueKind == JsonValueKind.String)
        {
            messages.Add(new WireMessage { Role = "user", Content = new MessageContent { Text = input.GetString() } });
            return;
        }
        if (input.ValueKind != JsonValueKind.Array || input.GetArrayLength() == 0)
        {
            throw GatewayException.InvalidRequest("Invalid type for 'input': expected a string or a non-empty array of input items.", "input", "invalid_type");
        }
        var i = 0;
        foreach (var item in input.EnumerateArray())
        {
            var at = $"input[{i++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw GatewayException.InvalidRequest($"Invalid type for '{at}': expected an input item object.", at, "invalid_type");
            }
            var type = String(item, "type", at) ?? (item.TryGetProperty("role", out _) ? "message" : null);
            switch (type)
            {
                case "message":
                    messages.Add(Message(item, at));
                    break;
                case "function_call":
                    var call = new WireToolCall
                    {
                        Id = Required(item, "call_id", at),
                        Type = "function",
                        Function = new WireFunctionCall { Name = Required(item, "name", at), Arguments = String(item, "arguments", at) ?? "{}" },
                    };
                    // Calls that follow an assistant turn belong to it, as in a chat completion's tool_calls.
                    if (messages.Count > 0 && messages[^1] is { Role: "assistant" } last)
                    {
                        (last.ToolCalls ??= []).Add(call);
                    }
                    else
                    {
                        messages.Add(new WireMessage { Role = "assistant", ToolCalls = [call] });
                    }
                    break;
                case "function_call_output":
                    messages.Add(new WireMessage { Role = "tool", ToolCallId = Required(item, "call_id", at), Content = new MessageContent { Text = OutputText(item, at) } });
                    break;
                case null:
                    throw GatewayException.InvalidRequest($"Missing required parameter: '{at}.type'.", $"{at}.type", "missing_required_parameter");
                default:
                    throw Unsupported($"{at}.type",
                        $"Input items of type '{ClientBounds.Shown(type)}' are not supported: send messages, 'function_call' and 'function_call_output' items.");
            }
        }
    }

    private static WireMessage Message(JsonElement item, string at)
    {
        var role = String(item, "role", at);
        if (role is not ("user" or "assistant" or "system" or "developer"))
        {
            throw role is null
                ? GatewayException.InvalidRequest($"Missing required parameter: '{at}.role'.", $"{at}.role", "missing_required_parameter")
                : GatewayException.InvalidRequest($"Invalid value: '{ClientBounds.Shown(role)}'. Supported values are: 'user', 'assistant', 'system' and 'developer'.", $"{at}.role", "invalid_value");
        }
        if (!item.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
        {
            throw GatewayException.InvalidRequest($"Missing required parameter: '{at}.content'.", $"{at}.content", "missing_required_parameter");
        }
        if (content.ValueKind == JsonValueKind.String)
        {
            return new WireMessage { Role = role, Content = new MessageContent { Text = content.GetString() } };
        }
        if (content.ValueKind != JsonValueKind.Array)
        {
            throw GatewayException.InvalidRequest($"Invalid type for '{at}.content': expected a string or an array of content parts.", $"{at}.content", "invalid_type");
        }
        var parts = new List<ContentPart>();
        var j = 0;
        foreach (var part in content.EnumerateArray())
        {
            var partAt = $"{at}.content[{j++}]";
            var partType = part.ValueKind == JsonValueKind.Object ? String(part, "type", partAt) : null;
            switch (partType)
            {
                case "input_text" or "output_text" or "text":
                    parts.Add(new ContentPart { Type = "text", Text = Required(part, "text", partAt) });
                    break;
                case "refusal":
                    parts.Add(new ContentPart { Type = "text", Text = Required(part, "refusal", partAt) });
                    break;
                case "input_image":
                    if (String(part, "image_url", partAt) is not { } url)
                    {
                        throw Unsupported($"{partAt}.image_url", "Images must be given by 'image_url' (a URL or a data URL); uploaded files ('file_id') are not supported.");
                    }
                    parts.Add(new ContentPart { Type = "image_url", ImageUrl = new ImageUrl { Url = url, Detail = String(part, "detail", partAt) } });
                    break;
                default:
                    throw Unsupported($"{partAt}.type", $"Content parts of type '{ClientBounds.Shown(partType ?? "null")}' are not supported: send 'input_text', 'output_text' or 'input_image'.");
            }
        }
        if (role == "assistant" && parts.TrueForAll(p => p.Type == "text"))
        {
            // An assistant turn in chat takes plain text.
            return new WireMessage { Role = role, Content = new MessageContent { Text = string.Concat(parts.Select(p => p.Text)) } };
        }
        return new WireMessage { Role = role, Content = new MessageContent { Parts = parts } };
    }

    private static string OutputText(JsonElement item, string at)
    {
        if (!item.TryGetProperty("output", out var output) || output.ValueKind == JsonValueKind.Null)
        {
            throw GatewayException.InvalidRequest($"Missing required parameter: '{at}.output'.", $"{at}.output", "missing_required_parameter");
        }
        if (output.ValueKind == JsonValueKind.String)
        {
            return output.GetString()!;
        }
        if (output.ValueKind == JsonValueKind.Array)
        {
            var text = new System.Text.StringBuilder();
            foreach (var part in output.EnumerateArray())
            {
                if (part.ValueKind != JsonValueKind.Object || String(part, "type", $"{at}.output") != "input_text")
                {
                    throw Unsupported($"{at}.output", "A function call output must be a string or a list of 'input_text' parts.");
                }
                text.Append(Required(part, "text", $"{at}.output"));
            }
            return text.ToString();
        }
        throw GatewayException.InvalidRequest($"Invalid type for '{at}.output': expected a string.", $"{at}.output", "invalid_type");
    }

    private static List<WireTool>? Tools(JsonElement root)
    {
        if (!root.TryGetProperty("tools", out var tools) || tools.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (tools.ValueKind != JsonValueKind.Array)
        {
            throw GatewayException.InvalidRequest("Invalid type for 'tools': expected an array of tools.", "tools", "invalid_type");
        }
        var result = new List<WireTool>(tools.GetArrayLength());
        var i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            var at = $"tools[{i++}]";
            var type = tool.ValueKind == JsonValueKind.Object ? String(tool, "type", at) : null;
            if (type != "function")
            {
                throw Unsupported($"{at}.type", $"Tools of type '{ClientBounds.Shown(type ?? "null")}' are not supported: hosted tools run at OpenAI, not at this gateway. Send function tools.");
            }
            result.Add(new WireTool
            {
                Type = "function",
                Function = new WireFunction
                {
                    Name = Required(tool, "name", at),
                    Description = String(tool, "description", at),
                    Parameters = tool.TryGetProperty("parameters", out var p) && p.ValueKind != JsonValueKind.Null ? p.Clone() : null,
                    Strict = Bool(tool, "strict", at),
                },
            });
        }
        return result;
    }

    private static ToolChoice? ToolChoiceOf(JsonElement root)
    {
        if (!root.TryGetProperty("tool_choice", out var choice) || choice.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (choice.ValueKind == JsonValueKind.String)
        {
            return new ToolChoice { Mode = choice.GetString() };
        }
        if (choice.ValueKind == JsonValueKind.Object && String(choice, "type", "tool_choice") == "function")
        {
            return new ToolChoice { Mode = "function", FunctionName = Required(choice, "name", "tool_choice") };
        }
        throw Unsupported("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"name\": …}; hosted-tool and allowed-tools choices are not supported.");
    }

    private static ResponseFormat? Format(JsonElement root)
    {
        if (!root.TryGetProperty("text", out var text) || text.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (text.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.InvalidRequest("Invalid type for 'text': expected an object.", "text", "invalid_type");
        }
        foreach (var property in text.EnumerateObject())
        {
            if (property.Name != "format")
            {
                throw Unsupported($"text.{property.Name}", $"'text.{ClientBounds.Shown(property.Name)}' is not supported; 'text' takes 'format' only.");
            }
        }
        if (!text.TryGetProperty("format", out var format) || format.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        var type = format.ValueKind == JsonValueKind.Object ? String(format, "type", "text.format") : null;
        return type switch
        {
            "text" => null,
            "json_object" => new ResponseFormat { Type = "json_object" },
            "json_schema" => new ResponseFormat
            {
                Type = "json_schema",
                JsonSchema = new JsonSchemaFormat
                {
                    Name = Required(format, "name", "text.format"),
                    Description = String(format, "description", "text.format"),
                    Schema = format.TryGetProperty("schema", out var schema) && schema.ValueKind != JsonValueKind.Null ? schema.Clone()
                        : throw GatewayException.InvalidRequest("Missing required parameter: 'text.format.schema'.", "text.format.schema", "missing_required_parameter"),
                    Strict = Bool(format, "strict", "text.format"),
                },
            },
            _ => throw GatewayException.InvalidRequest($"Invalid value: '{ClientBounds.Shown(type ?? "null")}'. Supported values are: 'text', 'json_object' and 'json_schema'.", "text.format.type", "invalid_value"),
        };
    }

    private static string? Reasoning(JsonElement root)
    {
        if (!root.TryGetProperty("reasoning", out var reasoning) || reasoning.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (reasoning.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.InvalidRequest("Invalid type for 'reasoning': expected an object.", "reasoning", "invalid_type");
        }
        foreach (var property in reasoning.EnumerateObject())
        {
            if (property.Name != "effort" && property.Value.ValueKind != JsonValueKind.Null)
            {
                throw Unsupported($"reasoning.{property.Name}", $"'reasoning.{ClientBounds.Shown(property.Name)}' is not supported (reasoning summaries need a stored response); 'reasoning' takes 'effort' only.");
            }
        }
        return String(reasoning, "effort", "reasoning");
    }

    private static Dictionary<string, string>? Metadata(JsonElement root)
    {
        if (!root.TryGetProperty("metadata", out var metadata) || metadata.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (metadata.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.InvalidRequest("Invalid type for 'metadata': expected an object of strings.", "metadata", "invalid_type");
        }
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in metadata.EnumerateObject())
        {
            result[property.Name] = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString()!
                : throw GatewayException.InvalidRequest($"Invalid type for 'metadata.{ClientBounds.Shown(property.Name)}': expected a string.", "metadata", "invalid_type");
        }
        return result;
    }

    private static void CheckStreamOptions(JsonElement root)
    {
        if (root.TryGetProperty("stream_options", out var options) && options.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in options.EnumerateObject())
            {
                // Obfuscation pads stream events against length side channels; a loopback gateway sends none.
                if (property.Name != "include_obfuscation")
                {
                    throw Unsupported($"stream_options.{property.Name}", $"'stream_options.{ClientBounds.Shown(property.Name)}' is not supported.");
                }
            }
        }
    }

    private static void RefuseStored(JsonElement root)
    {
        RefuseUnless(root, "store", v => v.ValueKind is JsonValueKind.False or JsonValueKind.Null,
            "This gateway does not store responses: send 'store': false (or leave it out) and pass the conversation in 'input'.");
        RefuseUnless(root, "previous_response_id", v => v.ValueKind == JsonValueKind.Null,
            "This gateway does not store responses, so 'previous_response_id' cannot be resolved: pass the conversation in 'input'.");
    }

    private static void RefuseUnless(JsonElement root, string name, Func<JsonElement, bool> accepted, string message)
    {
        if (root.TryGetProperty(name, out var value) && !accepted(value))
        {
            throw Unsupported(name, message);
        }
    }

    private static GatewayException Unsupported(string param, string message) =>
        GatewayException.InvalidRequest(message, param, "unsupported_parameter");

    private static string Required(JsonElement obj, string name, string at) =>
        String(obj, name, at) ?? throw GatewayException.InvalidRequest($"Missing required parameter: '{at}.{name}'.", $"{at}.{name}", "missing_required_parameter");

    private static string? String(JsonElement obj, string name, string? at = null)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.String ? value.GetString()
            : throw GatewayException.InvalidRequest($"Invalid type for '{Path(at, name)}': expected a string.", Path(at, name), "invalid_type");
    }

    private static double? Number(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.Number ? value.GetDouble()
            : throw GatewayException.InvalidRequest($"Invalid type for '{name}': expected a number.", name, "invalid_type");
    }

    private static int? Integer(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) ? n
            : throw GatewayException.InvalidRequest($"Invalid type for '{name}': expected an integer.", name, "invalid_type");
    }

    private static bool? Bool(JsonElement obj, string name, string? at = null)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw GatewayException.InvalidRequest($"Invalid type for '{Path(at, name)}': expected a boolean.", Path(at, name), "invalid_type"),
        };
    }

    private static string Path(string? at, string name) => at is null ? name : $"{at}.{name}";
}

/// <summary>A Responses request translated: the chat request to serve, and what the response object echoes back.</summary>
public sealed record ResponsesCall(ChatCompletionRequest Chat, ResponsesEcho Echo);

/// <summary>
/// The request fields a Responses API response object repeats (<c>instructions</c>, <c>tools</c>, <c>tool_choice</c>,
/// <c>text</c>, sampling, <c>metadata</c>), kept as the client sent them.
/// </summary>
public sealed class ResponsesEcho
{
    public string? Instructions { get; init; }
    public JsonElement? Tools { get; init; }
    public JsonElement? ToolChoice { get; init; }
    public JsonElement? Text { get; init; }
    public JsonElement? Reasoning { get; init; }
    public JsonElement? Metadata { get; init; }
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    public int? MaxOutputTokens { get; init; }
    public bool? ParallelToolCalls { get; init; }
    public string? User { get; init; }

    internal static ResponsesEcho Of(JsonElement root)
    {
        JsonElement? Raw(string name) => root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v.Clone() : null;
        return new ResponsesEcho
        {
            Instructions = root.TryGetProperty("instructions", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString() : null,
            Tools = Raw("tools"),
            ToolChoice = Raw("tool_choice"),
            Text = Raw("text"),
            Reasoning = Raw("reasoning"),
            Metadata = Raw("metadata"),
            Temperature = root.TryGetProperty("temperature", out var t) && t.ValueKind == JsonValueKind.Number ? t.GetDouble() : null,
            TopP = root.TryGetProperty("top_p", out var p) && p.ValueKind == JsonValueKind.Number ? p.GetDouble() : null,
            MaxOutputTokens = root.TryGetProperty("max_output_tokens", out var m) && m.ValueKind == JsonValueKind.Number && m.TryGetInt32(out var mv) ? mv : null,
            ParallelToolCalls = root.TryGetProperty("parallel_tool_calls", out var ptc) && ptc.ValueKind is JsonValueKind.True or JsonValueKind.False ? ptc.GetBoolean() : null,
            User = root.TryGetProperty("user", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null,
        };
    }
}
