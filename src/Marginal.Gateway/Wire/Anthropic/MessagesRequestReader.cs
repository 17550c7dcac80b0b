using System.Text.Json;
using Marginal.Core.Errors;
using Marginal.Gateway.Wire.OpenAI;

namespace Marginal.Gateway.Wire.Anthropic;

/// <summary>
/// Reads an Anthropic Messages API request (<c>POST /v1/messages</c>, <c>/v1/messages/count_tokens</c>) and translates
/// it into the chat completion request the gateway serves, so any configured model (OpenAI-compatible, local or
/// Anthropic) can be called through it, recorded and priced like chat. Every field or block the gateway cannot honour
/// is a 400 naming it: server tools, extended thinking, documents, <c>top_k</c>, containers and MCP servers.
/// <c>cache_control</c> marks are accepted; see docs/architecture.md, "Client dialects", for what they do.
/// </summary>
public static class MessagesRequestReader
{
    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p", "metadata", "stream", "tools",
        "tool_choice", "thinking", "service_tier",
    };

    /// <summary>Parses <paramref name="body"/>. <paramref name="countOnly"/>: a count_tokens body (no <c>max_tokens</c>).</summary>
    public static MessagesCall Read(ReadOnlySpan<byte> body, bool countOnly = false)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            throw GatewayException.InvalidRequest("The request body is not valid JSON.", code: "invalid_json");
        }
        using (document)
        {
            return Translate(document.RootElement, countOnly);
        }
    }

    public static MessagesCall Translate(JsonElement root, bool countOnly = false)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.InvalidRequest("The request body must be a JSON object.");
        }
        foreach (var property in root.EnumerateObject())
        {
            if (!Known.Contains(property.Name))
            {
                throw Unsupported(property.Name, $"{ClientBounds.Shown(property.Name)}: Extra inputs are not permitted (or not supported by this gateway).");
            }
        }
        var maxTokens = Integer(root, "max_tokens");
        if (maxTokens is null && !countOnly)
        {
            throw Missing("max_tokens");
        }
        var chat = new ChatCompletionRequest
        {
            Model = String(root, "model") ?? throw Missing("model"),
            MaxTokens = countOnly ? null : maxTokens,
            Temperature = Number(root, "temperature"),
            TopP = Number(root, "top_p"),
            Stream = countOnly ? null : Bool(root, "stream"),
            Stop = StopSequences(root),
            User = UserId(root),
        };
        if (chat.Temperature is < 0 or > 1)
        {
            throw GatewayException.InvalidRequest($"temperature: {chat.Temperature} is out of range: allowed from 0 to 1.", "temperature", "invalid_value");
        }
        if (chat.Stream == true)
        {
            chat.StreamOptions = new StreamOptions { IncludeUsage = true };
        }
        if (root.TryGetProperty("thinking", out var thinking) && thinking.ValueKind != JsonValueKind.Null
            && !(thinking.ValueKind == JsonValueKind.Object && thinking.TryGetProperty("type", out var tt) && tt.ValueKind == JsonValueKind.String && tt.GetString() == "disabled"))
        {
            throw Unsupported("thinking", "thinking: extended thinking is not supported by this gateway; leave 'thinking' out or set {\"type\": \"disabled\"}.");
        }
        if (String(root, "service_tier") is { } tier && tier is not ("auto" or "standard_only"))
        {
            throw GatewayException.InvalidRequest($"service_tier: '{ClientBounds.Shown(tier)}' is not one of 'auto', 'standard_only'.", "service_tier", "invalid_value");
        }

        var messages = new List<WireMessage>();
        if (System(root) is { } system)
        {
            messages.Add(new WireMessage { Role = "system", Content = new MessageContent { Text = system } });
        }
        ReadMessages(root, messages);
        chat.Messages = messages;
        chat.Tools = Tools(root);
        chat.ToolChoice = ToolChoiceOf(root, out var noParallel);
        if (noParallel)
        {
            chat.ParallelToolCalls = false;
        }
        return new MessagesCall(chat, chat.Model!);
    }

    /// <summary>Renames a chat parameter in an error raised by the chat reader to the Messages field it came from.</summary>
    public static GatewayException Rename(GatewayException error)
    {
        if (error.Param is not { } param)
        {
            return error;
        }
        var renamed = param switch
        {
            "stop" => "stop_sequences",
            _ when param.StartsWith("tools[", StringComparison.Ordinal) => param.Replace(".function.parameters", ".input_schema", StringComparison.Ordinal).Replace(".function.", ".", StringComparison.Ordinal),
            _ => param,
        };
        if (renamed == param)
        {
            return error;
        }
        return new GatewayException(error.Kind, error.Message.Replace($"'{param}'", $"'{renamed}'", StringComparison.Ordinal), error.Code, renamed) { RetryAfter = error.RetryAfter };
    }

    private static void ReadMessages(JsonElement root, List<WireMessage> messages)
    {
        if (!root.TryGetProperty("messages", out var list) || list.ValueKind == JsonValueKind.Null)
        {
            throw Missing("messages");
        }
        if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
        {
            throw GatewayException.InvalidRequest("messages: at least one message is required.", "messages", "invalid_value");
        }
        var i = 0;
        foreach (var message in list.EnumerateArray())
        {
            var at = $"messages.{i++}";
            if (message.ValueKind != JsonValueKind.Object)
            {
                throw GatewayException.InvalidRequest($"{at}: Input should be a valid dictionary.", at, "invalid_type");
            }
            var role = String(message, "role", at);
            if (role is not ("user" or "assistant"))
            {
                throw GatewayException.InvalidRequest($"{at}.role: Input should be 'user' or 'assistant'.", $"{at}.role", "invalid_value");
            }
            if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
            {
                throw Missing($"{at}.content");
            }
            if (content.ValueKind == JsonValueKind.String)
            {
                messages.Add(new WireMessage { Role = role, Content = new MessageContent { Text = content.GetString() } });
                continue;
            }
            if (content.ValueKind != JsonValueKind.Array)
            {
                throw GatewayException.InvalidRequest($"{at}.content: Input should be a valid string or list of content blocks.", $"{at}.content", "invalid_type");
            }
            if (role == "assistant")
            {
                messages.Add(Assistant(content, at));
            }
            else
            {
                User(content, at, messages);
            }
        }
    }

    private static WireMessage Assistant(JsonElement blocks, string at)
    {
        var text = new System.Text.StringBuilder();
        List<WireToolCall>? calls = null;
        var j = 0;
        foreach (var block in blocks.EnumerateArray())
        {
            var blockAt = $"{at}.content.{j++}";
            switch (BlockType(block, blockAt))
            {
                case "text":
                    text.Append(Required(block, "text", blockAt));
                    break;
                case "tool_use":
                    var input = block.TryGetProperty("input", out var args) && args.ValueKind == JsonValueKind.Object ? args.GetRawText()
                        : throw GatewayException.InvalidRequest($"{blockAt}.input: Input should be a valid dictionary.", $"{blockAt}.input", "invalid_type");
                    (calls ??= []).Add(new WireToolCall
                    {
                        Id = Required(block, "id", blockAt),
                        Type = "function",
                        Function = new WireFunctionCall { Name = Required(block, "name", blockAt), Arguments = input },
                    });
                    break;
                case var other:
                    throw Unsupported($"{blockAt}.type", $"{blockAt}.type: '{ClientBounds.Shown(other)}' blocks are not supported in assistant turns; send 'text' and 'tool_use'.");
            }
        }
        return new WireMessage { Role = "assistant", Content = text.Length > 0 || calls is null ? new MessageContent { Text = text.ToString() } : null, ToolCalls = calls };
    }

    // A user turn's tool results become chat tool messages (which must follow the assistant's calls), then its text and
    // images a user message.
    private static void User(JsonElement blocks, string at, List<WireMessage> messages)
    {
        var parts = new List<ContentPart>();
        var j = 0;
        foreach (var block in blocks.EnumerateArray())
        {
            var blockAt = $"{at}.content.{j++}";
            switch (BlockType(block, blockAt))
            {
                case "text":
                    parts.Add(new ContentPart { Type = "text", Text = Required(block, "text", blockAt) });
                    break;
                case "image":
                    parts.Add(new ContentPart { Type = "image_url", ImageUrl = new ImageUrl { Url = ImageUrlOf(block, blockAt) } });
                    break;
                case "tool_result":
                    var result = ToolResultText(block, blockAt);
                    if (block.TryGetProperty("is_error", out var isError) && isError.ValueKind == JsonValueKind.True)
                    {
                        result = "Error: " + result;
                    }
                    messages.Add(new WireMessage { Role = "tool", ToolCallId = Required(block, "tool_use_id", blockAt), Content = new MessageContent { Text = result } });
                    break;
                case var other:
                    throw Unsupported($"{blockAt}.type", $"{blockAt}.type: '{ClientBounds.Shown(other)}' blocks are not supported; send 'text', 'image' and 'tool_result'.");
            }
        }
        if (parts.Count > 0)
        {
            messages.Add(parts.TrueForAll(p => p.Type == "text")
                ? new WireMessage { Role = "user", Content = new MessageContent { Text = string.Join("\n\n", parts.Select(p => p.Text)) } }
                : new WireMessage { Role = "user", Content = new MessageContent { Parts = parts } });
        }
    }

    private static string ToolResultText(JsonElement block, string at)
    {
        if (!block.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
        {
            return "";
        }
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }
        if (content.ValueKind != JsonValueKind.Array)
        {
            throw GatewayException.InvalidRequest($"{at}.content: Input should be a valid string or list of text blocks.", $"{at}.content", "invalid_type");
        }
        var text = new System.Text.StringBuilder();
        var k = 0;
        foreach (var part in content.EnumerateArray())
        {
            var partAt = $"{at}.content.{k++}";
            if (BlockType(part, partAt) != "text")
            {
                throw Unsupported($"{partAt}.type", $"{partAt}.type: tool results may hold text blocks only at this gateway.");
            }
            text.Append(Required(part, "text", partAt));
        }
        return text.ToString();
    }

    private static string ImageUrlOf(JsonElement block, string at)
    {
        if (!block.TryGetProperty("source", out var source) || source.ValueKind != JsonValueKind.Object)
        {
            throw Missing($"{at}.source");
        }
        return String(source, "type", $"{at}.source") switch
        {
            "base64" => $"data:{Required(source, "media_type", $"{at}.source")};base64,{Required(source, "data", $"{at}.source")}",
            "url" => Required(source, "url", $"{at}.source"),
            var other => throw Unsupported($"{at}.source.type", $"{at}.source.type: '{ClientBounds.Shown(other ?? "null")}' image sources are not supported; send 'base64' or 'url'."),
        };
    }

    private static string? System(JsonElement root)
    {
        if (!root.TryGetProperty("system", out var system) || system.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (system.ValueKind == JsonValueKind.String)
        {
            return system.GetString();
        }
        if (system.ValueKind != JsonValueKind.Array)
        {
            throw GatewayException.InvalidRequest("system: Input should be a valid string or list of text blocks.", "system", "invalid_type");
        }
        var parts = new List<string>();
        var j = 0;
        foreach (var block in system.EnumerateArray())
        {
            var at = $"system.{j++}";
            if (BlockType(block, at) != "text")
            {
                throw Unsupported($"{at}.type", $"{at}.type: system blocks must be 'text'.");
            }
            parts.Add(Required(block, "text", at));
        }
        return string.Join("\n\n", parts);
    }

    private static List<WireTool>? Tools(JsonElement root)
    {
        if (!root.TryGetProperty("tools", out var tools) || tools.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (tools.ValueKind != JsonValueKind.Array)
        {
            throw GatewayException.InvalidRequest("tools: Input should be a valid list.", "tools", "invalid_type");
        }
        var result = new List<WireTool>();
        var i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            var at = $"tools.{i++}";
            if (tool.ValueKind != JsonValueKind.Object)
            {
                throw GatewayException.InvalidRequest($"{at}: Input should be a valid dictionary.", at, "invalid_type");
            }
            if (String(tool, "type", at) is { } type && type != "custom")
            {
                throw Unsupported($"{at}.type", $"{at}.type: server tools ('{ClientBounds.Shown(type)}') run at Anthropic, not at this gateway; send custom tools with an input_schema.");
            }
            result.Add(new WireTool
            {
                Type = "function",
                Function = new WireFunction
                {
                    Name = Required(tool, "name", at),
                    Description = String(tool, "description", at),
                    Parameters = tool.TryGetProperty("input_schema", out var schema) && schema.ValueKind == JsonValueKind.Object ? schema.Clone() : throw Missing($"{at}.input_schema"),
                },
            });
        }
        return result;
    }

    private static ToolChoice? ToolChoiceOf(JsonElement root, out bool noParallel)
    {
        noParallel = false;
        if (!root.TryGetProperty("tool_choice", out var choice) || choice.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (choice.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.InvalidRequest("tool_choice: Input should be a valid dictionary.", "tool_choice", "invalid_type");
        }
        noParallel = choice.TryGetProperty("disable_parallel_tool_use", out var d) && d.ValueKind == JsonValueKind.True;
        return String(choice, "type", "tool_choice") switch
        {
            "auto" => new ToolChoice { Mode = "auto" },
            "any" => new ToolChoice { Mode = "required" },
            "none" => new ToolChoice { Mode = "none" },
            "tool" => new ToolChoice { Mode = "function", FunctionName = Required(choice, "name", "tool_choice") },
            var other => throw GatewayException.InvalidRequest($"tool_choice.type: '{ClientBounds.Shown(other ?? "null")}' is not one of 'auto', 'any', 'tool', 'none'.", "tool_choice.type", "invalid_value"),
        };
    }

    private static List<string>? StopSequences(JsonElement root)
    {
        if (!root.TryGetProperty("stop_sequences", out var stops) || stops.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (stops.ValueKind != JsonValueKind.Array)
        {
            throw GatewayException.InvalidRequest("stop_sequences: Input should be a valid list of strings.", "stop_sequences", "invalid_type");
        }
        var result = new List<string>();
        foreach (var stop in stops.EnumerateArray())
        {
            result.Add(stop.ValueKind == JsonValueKind.String ? stop.GetString()!
                : throw GatewayException.InvalidRequest("stop_sequences: Input should be a valid list of strings.", "stop_sequences", "invalid_type"));
        }
        return result.Count == 0 ? null : result;
    }

    private static string? UserId(JsonElement root)
    {
        if (!root.TryGetProperty("metadata", out var metadata) || metadata.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (metadata.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.InvalidRequest("metadata: Input should be a valid dictionary.", "metadata", "invalid_type");
        }
        foreach (var property in metadata.EnumerateObject())
        {
            if (property.Name != "user_id")
            {
                throw Unsupported($"metadata.{property.Name}", $"metadata.{ClientBounds.Shown(property.Name)}: Extra inputs are not permitted.");
            }
        }
        return String(metadata, "user_id", "metadata");
    }

    private static string BlockType(JsonElement block, string at)
    {
        if (block.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.InvalidRequest($"{at}: Input should be a valid dictionary.", at, "invalid_type");
        }
        return String(block, "type", at) ?? throw Missing($"{at}.type");
    }

    private static GatewayException Missing(string field) =>
        GatewayException.InvalidRequest($"{field}: Field required", field, "missing_required_parameter");

    private static GatewayException Unsupported(string param, string message) =>
        GatewayException.InvalidRequest(message, param, "unsupported_parameter");

    private static string Required(JsonElement obj, string name, string at) => String(obj, name, at) ?? throw Missing($"{at}.{name}");

    private static string? String(JsonElement obj, string name, string? at = null)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.String ? value.GetString()
            : throw GatewayException.InvalidRequest($"{Path(at, name)}: Input should be a valid string.", Path(at, name), "invalid_type");
    }

    private static double? Number(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.Number ? value.GetDouble()
            : throw GatewayException.InvalidRequest($"{name}: Input should be a valid number.", name, "invalid_type");
    }

    private static int? Integer(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) && n >= 1 ? n
            : throw GatewayException.InvalidRequest($"{name}: Input should be an integer of at least 1.", name, "invalid_value");
    }

    private static bool? Bool(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw GatewayException.InvalidRequest($"{name}: Input should be a valid boolean.", name, "invalid_type"),
        };
    }

    private static string Path(string? at, string name) => at is null ? name : $"{at}.{name}";
}

/// <summary>An Anthropic Messages request translated: the chat request to serve and the model the client named.</summary>
public sealed record MessagesCall(ChatCompletionRequest Chat, string Model);
