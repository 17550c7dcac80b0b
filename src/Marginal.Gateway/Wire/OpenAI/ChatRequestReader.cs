using System.Text.Json;
using System.Text.Json.Nodes;
using Marginal.Core.Errors;
using Marginal.Gateway.Providers;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Wire.OpenAI;

/// <summary>
/// Turns an OpenAI chat completion request into Microsoft.Extensions.AI messages and options.
/// Every problem is a <see cref="GatewayException"/> of kind invalid request naming the parameter at fault,
/// worded like OpenAI's own errors.
/// </summary>
public static class ChatRequestReader
{
    /// <summary>Deserializes the body; malformed JSON and wrong-typed fields become invalid-request errors.</summary>
    public static async ValueTask<ChatCompletionRequest> ReadAsync(Stream body, CancellationToken cancellationToken)
    {
        ChatCompletionRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(body, WireJsonContext.Default.ChatCompletionRequest, cancellationToken);
        }
        catch (JsonException ex)
        {
            throw FromJsonException(ex);
        }
        return request ?? throw GatewayException.InvalidRequest("The request body must be a JSON object.");
    }

    /// <summary>Deserializes a body already in memory (benchmarks, tests).</summary>
    public static ChatCompletionRequest Read(ReadOnlySpan<byte> body)
    {
        ChatCompletionRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(body, WireJsonContext.Default.ChatCompletionRequest);
        }
        catch (JsonException ex)
        {
            throw FromJsonException(ex);
        }
        return request ?? throw GatewayException.InvalidRequest("The request body must be a JSON object.");
    }

    /// <summary>Reads a body kept as JSON (a deferred job's), with the same errors as a body read from the wire.</summary>
    public static ChatCompletionRequest Read(JsonNode body)
    {
        ChatCompletionRequest? request;
        try
        {
            request = body.Deserialize(WireJsonContext.Default.ChatCompletionRequest);
        }
        catch (JsonException ex)
        {
            throw FromJsonException(ex);
        }
        return request ?? throw GatewayException.InvalidRequest("The request body must be a JSON object.");
    }

    /// <summary>
    /// A syntax error (System.Text.Json raises a subtype for those) is "could not parse";
    /// a value of the wrong type is named by its path.
    /// </summary>
    public static GatewayException FromJsonException(JsonException ex)
    {
        var param = ParamOf(ex.Path);
        if (ex.GetType() != typeof(JsonException) || param is null)
        {
            return GatewayException.InvalidRequest(
                "We could not parse the JSON body of your request. The body must be valid JSON (see https://platform.openai.com/docs/api-reference).",
                code: "invalid_json");
        }
        var reason = ex.Message.StartsWith("expected", StringComparison.Ordinal) ? ex.Message.Split(" Path:")[0] : "wrong type";
        return GatewayException.InvalidRequest($"Invalid type for '{param}': {reason}.", param, "invalid_type");
    }

    private static string? ParamOf(string? path) =>
        path is null || path == "$" ? null : path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');

    /// <summary>Checks values and converts. The returned options carry the client's model in <see cref="ChatOptions.ModelId"/>.</summary>
    public static (List<ChatMessage> Messages, ChatOptions Options) ToChat(ChatCompletionRequest request)
    {
        if (string.IsNullOrEmpty(request.Model))
        {
            throw GatewayException.InvalidRequest("You must provide a model parameter.", "model", "missing_required_parameter");
        }
        ClientBounds.Check(request.Model, ClientBounds.Model, "model");
        ClientBounds.Check(request.User, ClientBounds.User, "user");
        ClientBounds.CheckMetadata(request.Metadata);
        if (request.Messages is not { Count: > 0 } wireMessages)
        {
            throw GatewayException.InvalidRequest("'messages' must be a non-empty array of messages.", "messages", "missing_required_parameter");
        }
        if (request.N is { } n && n != 1)
        {
            throw GatewayException.InvalidRequest(n < 1 ? $"{n} is less than the minimum of 1 - 'n'." : "Only n=1 is supported: this gateway does not generate several choices per request.", "n", "unsupported_value");
        }
        if (request.StreamOptions is not null && request.Stream != true)
        {
            throw GatewayException.InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", "invalid_value");
        }
        Range(request.Temperature, 0, 2, "temperature");
        Range(request.TopP, 0, 1, "top_p");
        Range(request.FrequencyPenalty, -2, 2, "frequency_penalty");
        Range(request.PresencePenalty, -2, 2, "presence_penalty");
        if (request.MaxTokens is < 1)
        {
            throw GatewayException.InvalidRequest($"{request.MaxTokens} is less than the minimum of 1 - 'max_tokens'.", "max_tokens", "invalid_value");
        }
        if (request.MaxCompletionTokens is < 1)
        {
            throw GatewayException.InvalidRequest($"{request.MaxCompletionTokens} is less than the minimum of 1 - 'max_completion_tokens'.", "max_completion_tokens", "invalid_value");
        }
        if (request.Stop is { Count: > 4 })
        {
            throw GatewayException.InvalidRequest("'stop' takes at most 4 sequences.", "stop", "invalid_value");
        }

        var messages = new List<ChatMessage>(wireMessages.Count);
        for (var i = 0; i < wireMessages.Count; i++)
        {
            messages.Add(ToMessage(wireMessages[i] ?? throw NullItem($"messages[{i}]", "a message object"), i));
        }

        var options = new ChatOptions
        {
            ModelId = request.Model,
            Temperature = (float?)request.Temperature,
            TopP = (float?)request.TopP,
            MaxOutputTokens = request.MaxCompletionTokens ?? request.MaxTokens,
            StopSequences = request.Stop,
            FrequencyPenalty = (float?)request.FrequencyPenalty,
            PresencePenalty = (float?)request.PresencePenalty,
            Seed = request.Seed,
            ResponseFormat = ToResponseFormat(request.ResponseFormat),
            AllowMultipleToolCalls = request.ParallelToolCalls,
            Reasoning = ToReasoning(request.ReasoningEffort),
        };
        if (request.Tools is { Count: > 0 } tools)
        {
            options.Tools = ToTools(tools);
        }
        AddOpenAIOnlyFields(request, options);
        if (request.ToolChoice is { } choice)
        {
            options.ToolMode = choice.Mode switch
            {
                "auto" => ChatToolMode.Auto,
                "none" => ChatToolMode.None,
                "required" => ChatToolMode.RequireAny,
                "function" => ChatToolMode.RequireSpecific(choice.FunctionName!),
                _ => throw GatewayException.InvalidRequest($"Invalid value: '{choice.Mode}'. Supported values are: 'none', 'auto' and 'required', or a named function.", "tool_choice", "invalid_value"),
            };
        }
        return (messages, options);
    }

    /// <summary>
    /// Maps OpenAI's <c>reasoning_effort</c>. M.E.AI has no "minimal" level; Low is the nearest one that keeps
    /// reasoning on (None would change the model's behaviour, not just its cost).
    /// </summary>
    private static ReasoningOptions? ToReasoning(string? effort) => effort switch
    {
        null => null,
        "none" => new ReasoningOptions { Effort = ReasoningEffort.None },
        "minimal" or "low" => new ReasoningOptions { Effort = ReasoningEffort.Low },
        "medium" => new ReasoningOptions { Effort = ReasoningEffort.Medium },
        "high" => new ReasoningOptions { Effort = ReasoningEffort.High },
        "xhigh" => new ReasoningOptions { Effort = ReasoningEffort.ExtraHigh },
        _ => throw GatewayException.InvalidRequest($"Invalid value: '{effort}'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high' and 'xhigh'.", "reasoning_effort", "invalid_value"),
    };

    /// <summary>A <c>null</c> where the array needs an object (the serializer lets it through as a null element).</summary>
    private static GatewayException NullItem(string param, string expected) =>
        GatewayException.InvalidRequest($"Invalid type for '{param}': expected {expected}, but got null instead.", param, "invalid_type");

    private static void Range(double? value, double min, double max, string param)
    {
        if (value is { } v && (v < min || v > max || double.IsNaN(v)))
        {
            throw GatewayException.InvalidRequest($"{v} is out of range for '{param}': allowed from {min} to {max}.", param, "invalid_value");
        }
    }

    private static ChatMessage ToMessage(WireMessage wire, int index)
    {
        var at = $"messages[{index}]";
        var role = wire.Role switch
        {
            "system" => ChatRole.System,
            "developer" => new ChatRole("developer"),
            "user" => ChatRole.User,
            "assistant" => ChatRole.Assistant,
            "tool" => ChatRole.Tool,
            null => throw GatewayException.InvalidRequest($"Missing required parameter: '{at}.role'.", $"{at}.role", "missing_required_parameter"),
            _ => throw GatewayException.InvalidRequest($"Invalid value: '{wire.Role}'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.", $"{at}.role", "invalid_value"),
        };
        var contents = new List<AIContent>();
        if (role == ChatRole.Tool)
        {
            if (string.IsNullOrEmpty(wire.ToolCallId))
            {
                throw GatewayException.InvalidRequest($"Missing required parameter: '{at}.tool_call_id'.", $"{at}.tool_call_id", "missing_required_parameter");
            }
            contents.Add(new FunctionResultContent(wire.ToolCallId, TextOf(wire.Content, at) ?? ""));
            return new ChatMessage(role, contents);
        }
        AddContent(wire.Content, at, role, contents);
        if (wire.ToolCalls is { Count: > 0 } calls)
        {
            if (role != ChatRole.Assistant)
            {
                throw GatewayException.InvalidRequest($"'{at}.tool_calls' is only allowed on assistant messages.", $"{at}.tool_calls", "invalid_value");
            }
            for (var j = 0; j < calls.Count; j++)
            {
                var callAt = $"{at}.tool_calls[{j}]";
                contents.Add(ToFunctionCall(calls[j] ?? throw NullItem(callAt, "a tool call object"), callAt));
            }
        }
        if (contents.Count == 0 && role != ChatRole.Assistant)
        {
            throw GatewayException.InvalidRequest($"Missing required parameter: '{at}.content'.", $"{at}.content", "missing_required_parameter");
        }
        return new ChatMessage(role, contents) { AuthorName = wire.Name };
    }

    private static string? TextOf(MessageContent? content, string at)
    {
        if (content?.Parts is not { } parts)
        {
            return content?.Text;
        }
        var text = new System.Text.StringBuilder();
        for (var i = 0; i < parts.Count; i++)
        {
            if (parts[i].Type != "text" || parts[i].Text is null)
            {
                throw GatewayException.InvalidRequest($"Only text parts are allowed here; '{at}.content[{i}].type' is '{parts[i].Type}'.", $"{at}.content[{i}].type", "invalid_value");
            }
            text.Append(parts[i].Text);
        }
        return text.ToString();
    }

    private static void AddContent(MessageContent? content, string at, ChatRole role, List<AIContent> contents)
    {
        if (content is null)
        {
            return;
        }
        if (content.Parts is not { } parts)
        {
            contents.Add(new TextContent(content.Text));
            return;
        }
        for (var i = 0; i < parts.Count; i++)
        {
            var part = parts[i];
            var partAt = $"{at}.content[{i}]";
            switch (part.Type)
            {
                case "text" when part.Text is not null:
                    contents.Add(new TextContent(part.Text));
                    break;
                case "refusal" when role == ChatRole.Assistant && part.Refusal is not null:
                    contents.Add(new TextContent(part.Refusal));
                    break;
                case "image_url" when role == ChatRole.User && part.ImageUrl?.Url is { } url:
                    contents.Add(ToImage(url, $"{partAt}.image_url.url"));
                    break;
                case "input_audio" when role == ChatRole.User && part.InputAudio is { Data: { } data } audio:
                    contents.Add(ToAudio(data, audio.Format, $"{partAt}.input_audio"));
                    break;
                case "text" or "refusal" or "image_url" or "input_audio":
                    throw GatewayException.InvalidRequest($"Content part '{part.Type}' at '{partAt}' is missing its value or is not allowed for role '{role.Value}'.", partAt, "invalid_value");
                default:
                    throw GatewayException.InvalidRequest($"Invalid value: '{part.Type}'. Supported content part types are: 'text', 'image_url', 'input_audio' (and 'refusal' for assistant messages).", $"{partAt}.type", "invalid_value");
            }
        }
    }

    private static AIContent ToImage(string url, string param)
    {
        if (url.StartsWith("data:", StringComparison.Ordinal))
        {
            try
            {
                return new DataContent(url);
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException)
            {
                throw GatewayException.InvalidRequest($"Invalid image data URL at '{param}'.", param, "invalid_image_url");
            }
        }
        if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
        {
            return new UriContent(uri, "image/*");
        }
        throw GatewayException.InvalidRequest($"Invalid image URL at '{param}': expected an http(s) URL or a data URL.", param, "invalid_image_url");
    }

    private static DataContent ToAudio(string base64, string? format, string param)
    {
        var mediaType = format switch
        {
            "wav" => "audio/wav",
            "mp3" => "audio/mpeg",
            _ => throw GatewayException.InvalidRequest($"Invalid value: '{format}'. Supported values are: 'wav' and 'mp3'.", $"{param}.format", "invalid_value"),
        };
        try
        {
            return new DataContent(Convert.FromBase64String(base64), mediaType);
        }
        catch (FormatException)
        {
            throw GatewayException.InvalidRequest($"'{param}.data' is not valid base64.", $"{param}.data", "invalid_value");
        }
    }

    private static FunctionCallContent ToFunctionCall(WireToolCall call, string at)
    {
        if (string.IsNullOrEmpty(call.Id))
        {
            throw GatewayException.InvalidRequest($"Missing required parameter: '{at}.id'.", $"{at}.id", "missing_required_parameter");
        }
        if (call.Function?.Name is not { Length: > 0 } name)
        {
            throw GatewayException.InvalidRequest($"Missing required parameter: '{at}.function.name'.", $"{at}.function.name", "missing_required_parameter");
        }
        return new FunctionCallContent(call.Id, name, ParseArguments(call.Function.Arguments, $"{at}.function.arguments"));
    }

    private static Dictionary<string, object?>? ParseArguments(string? json, string param)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw GatewayException.InvalidRequest($"'{param}' must be a JSON object encoded as a string.", param, "invalid_value");
            }
            var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                arguments[property.Name] = property.Value.Clone();
            }
            return arguments;
        }
        catch (JsonException)
        {
            throw GatewayException.InvalidRequest($"'{param}' is not valid JSON.", param, "invalid_value");
        }
    }

    private static List<AITool> ToTools(List<WireTool> tools)
    {
        var result = new List<AITool>(tools.Count);
        for (var i = 0; i < tools.Count; i++)
        {
            var at = $"tools[{i}]";
            if (tools[i] is null)
            {
                throw NullItem(at, "a tool object");
            }
            if (tools[i].Type != "function")
            {
                throw GatewayException.InvalidRequest($"Invalid value: '{tools[i].Type}'. Supported values are: 'function'.", $"{at}.type", "invalid_value");
            }
            if (tools[i].Function is not { Name: { Length: > 0 } name } function)
            {
                throw GatewayException.InvalidRequest($"Missing required parameter: '{at}.function.name'.", $"{at}.function.name", "missing_required_parameter");
            }
            var schema = function.Parameters ?? EmptyObjectSchema;
            if (schema.ValueKind != JsonValueKind.Object)
            {
                throw GatewayException.InvalidRequest($"'{at}.function.parameters' must be a JSON Schema object.", $"{at}.function.parameters", "invalid_value");
            }
            RequireValidText(schema, $"{at}.function.parameters");
            result.Add(new ClientFunctionDeclaration(name, function.Description, schema, function.Strict));
        }
        return result;
    }

    private static ChatResponseFormatJson ForJsonSchema(JsonElement schema, JsonSchemaFormat format)
    {
        RequireValidText(schema, "response_format.json_schema.schema");
        return ChatResponseFormat.ForJsonSchema(schema, format.Name, format.Description);
    }

    /// <summary>
    /// <c>logprobs</c>, <c>top_logprobs</c>, <c>logit_bias</c> and <c>response_format.json_schema.strict</c>, checked as
    /// OpenAI checks them, for the provider to forward (<see cref="OpenAIOnlyFields"/>).
    /// </summary>
    private static void AddOpenAIOnlyFields(ChatCompletionRequest request, ChatOptions options)
    {
        if (request.TopLogprobs is { } top)
        {
            if (top is < 0 or > 20)
            {
                throw GatewayException.InvalidRequest($"{top} is out of range for 'top_logprobs': allowed from 0 to 20.", "top_logprobs", "invalid_value");
            }
            if (request.Logprobs != true)
            {
                throw GatewayException.InvalidRequest("'top_logprobs' needs 'logprobs' set to true.", "top_logprobs", "invalid_value");
            }
            (options.AdditionalProperties ??= [])[OpenAIOnlyFields.TopLogprobs] = top;
        }
        if (request.Logprobs == true)
        {
            (options.AdditionalProperties ??= [])[OpenAIOnlyFields.Logprobs] = true;
        }
        if (request.LogitBias is { Count: > 0 } bias)
        {
            if (bias.Count > ClientBounds.LogitBiasEntries)
            {
                throw GatewayException.InvalidRequest($"'logit_bias' may hold at most {ClientBounds.LogitBiasEntries} tokens.", "logit_bias", "invalid_value");
            }
            var pairs = new List<(int Token, int Bias)>(bias.Count);
            foreach (var (token, value) in bias)
            {
                if (!int.TryParse(token, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                {
                    throw GatewayException.InvalidRequest("'logit_bias' keys must be token ids (non-negative integers).", "logit_bias", "invalid_value");
                }
                if (value is < -100 or > 100)
                {
                    throw GatewayException.InvalidRequest($"{value} is out of range for 'logit_bias': allowed from -100 to 100.", "logit_bias", "invalid_value");
                }
                pairs.Add((id, value));
            }
            pairs.Sort();
            (options.AdditionalProperties ??= [])[OpenAIOnlyFields.LogitBias] = string.Join(',', pairs.Select(p => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{p.Token}:{p.Bias}")));
        }
        if (request.ResponseFormat?.JsonSchema?.Strict is { } strict && options.ResponseFormat is ChatResponseFormatJson)
        {
            (options.AdditionalProperties ??= [])[OpenAIOnlyFields.Strict] = strict;
        }
    }

    private static readonly JsonElement EmptyObjectSchema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement;

    /// <summary>
    /// A schema is kept as raw JSON and only decoded when it is written upstream, so text that is not valid UTF-8 (or an
    /// escaped lone surrogate) would fail there and be blamed on the provider. Decoding every string and name here
    /// makes it the client's 400, naming the field, before anything is sent.
    /// </summary>
    private static void RequireValidText(JsonElement element, string param)
    {
        try
        {
            Visit(element);
        }
        catch (InvalidOperationException)
        {
            throw GatewayException.InvalidRequest($"'{param}' holds text that is not valid UTF-8.", param, "invalid_encoding");
        }

        static void Visit(JsonElement element)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.String:
                    _ = element.GetString();
                    break;
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        _ = property.Name;
                        Visit(property.Value);
                    }
                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        Visit(item);
                    }
                    break;
            }
        }
    }

    private static ChatResponseFormat? ToResponseFormat(ResponseFormat? format) => format?.Type switch
    {
        null => null,
        "text" => ChatResponseFormat.Text,
        "json_object" => ChatResponseFormat.Json,
        "json_schema" when format.JsonSchema is { Schema: { ValueKind: JsonValueKind.Object } schema } js =>
            ForJsonSchema(schema, js),
        "json_schema" => throw GatewayException.InvalidRequest("'response_format.json_schema.schema' must be a JSON Schema object.", "response_format.json_schema", "invalid_value"),
        _ => throw GatewayException.InvalidRequest($"Invalid value: '{format.Type}'. Supported values are: 'text', 'json_object' and 'json_schema'.", "response_format.type", "invalid_value"),
    };
}
