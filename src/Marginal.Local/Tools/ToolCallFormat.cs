using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Marginal.Local.Grammars;
using Microsoft.Extensions.AI;

namespace Marginal.Local.Tools;

/// <summary>
/// How tools reach a local model and how its calls come back, in the Hermes format that Qwen 2.5, Hermes and other
/// open-weight models are trained on (llama.cpp's <c>llama_chat_apply_template</c>, which LLamaSharp uses, has no tool
/// support, so the format is fixed here rather than taken from the GGUF's template):
/// <list type="bullet">
/// <item>the tools' JSON signatures go into the system message between <c>&lt;tools&gt;</c> tags, with the instruction
/// to answer a call as <c>&lt;tool_call&gt;{"name": …, "arguments": {…}}&lt;/tool_call&gt;</c>;</item>
/// <item>an earlier assistant call is written back the same way, and a tool's result as a user turn holding
/// <c>&lt;tool_response&gt;…&lt;/tool_response&gt;</c> (Qwen 2.5's template does the same);</item>
/// <item>the answer's <c>&lt;tool_call&gt;</c> blocks whose JSON names a given tool become the response's tool calls.</item>
/// </list>
/// When a call is required (<c>tool_choice</c> <c>required</c> or a named function) a grammar admits exactly one call
/// of the allowed tools, its arguments matching the tool's parameter schema.
/// </summary>
public static class ToolCallFormat
{
    public const string CallStart = "<tool_call>";
    public const string CallEnd = "</tool_call>";

    // Prompts are read by a model, not a browser: '<', '>' and non-ASCII stay as they are.
    private static readonly JsonWriterOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The messages as the model sees them: tools described in the system message, calls and results as text.</summary>
    public static List<ChatMessage> Prepare(IEnumerable<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration> tools)
    {
        var prepared = new List<ChatMessage>();
        foreach (var message in messages)
        {
            var text = Render(message);
            var role = message.Role == ChatRole.Tool ? ChatRole.User : message.Role;
            prepared.Add(new ChatMessage(role, text));
        }
        if (tools.Count == 0)
        {
            return prepared;
        }
        var description = Describe(tools);
        if (prepared.Count > 0 && prepared[0].Role == ChatRole.System)
        {
            prepared[0] = new ChatMessage(ChatRole.System, prepared[0].Text + "\n\n" + description);
        }
        else
        {
            prepared.Insert(0, new ChatMessage(ChatRole.System, description));
        }
        return prepared;
    }

    /// <summary>One message's contents as text: its text, its calls as <c>&lt;tool_call&gt;</c> blocks, its tool results as <c>&lt;tool_response&gt;</c> blocks.</summary>
    private static string Render(ChatMessage message)
    {
        var text = new StringBuilder();
        foreach (var content in message.Contents)
        {
            switch (content)
            {
                case TextContent t:
                    text.Append(t.Text);
                    break;
                case FunctionCallContent call:
                    Separate(text).Append(CallStart).Append('\n').Append(CallJson(call.Name, JsonSerializer.SerializeToElement(call.Arguments ?? new Dictionary<string, object?>(),
                        AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(IDictionary<string, object?>))))).Append('\n').Append(CallEnd);
                    break;
                case FunctionResultContent result:
                    Separate(text).Append("<tool_response>\n").Append(ResultText(result.Result)).Append("\n</tool_response>");
                    break;
            }
        }
        return text.ToString();
    }

    private static StringBuilder Separate(StringBuilder text) => text.Length > 0 ? text.Append('\n') : text;

    private static string ResultText(object? result) => result switch
    {
        null => "",
        string s => s,
        JsonElement json => json.ValueKind == JsonValueKind.String ? json.GetString()! : json.GetRawText(),
        _ => JsonSerializer.Serialize(result, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(object))),
    };

    private static string CallJson(string name, JsonElement arguments)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, Relaxed))
        {
            json.WriteStartObject();
            json.WriteString("name", name);
            json.WritePropertyName("arguments");
            arguments.WriteTo(json);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The system-message text that lists the tools (Qwen 2.5's wording).</summary>
    internal static string Describe(IReadOnlyList<AIFunctionDeclaration> tools)
    {
        var text = new StringBuilder("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n")
            .Append("You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
        foreach (var tool in tools)
        {
            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer, Relaxed))
            {
                json.WriteStartObject();
                json.WriteString("type", "function");
                json.WriteStartObject("function");
                json.WriteString("name", tool.Name);
                if (!string.IsNullOrEmpty(tool.Description))
                {
                    json.WriteString("description", tool.Description);
                }
                json.WritePropertyName("parameters");
                tool.JsonSchema.WriteTo(json);
                json.WriteEndObject();
                json.WriteEndObject();
            }
            text.Append('\n').Append(Encoding.UTF8.GetString(buffer.ToArray()));
        }
        return text.Append("\n</tools>\n\nFor each function call, return a json object with function name and arguments within ")
            .Append("<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>")
            .ToString();
    }

    /// <summary>
    /// The grammar rules (no root) for one call of any of <paramref name="tools"/>, and the rule's name: <c>&lt;tool_call&gt;</c>,
    /// a JSON object whose <c>name</c> is one of the tools and whose <c>arguments</c> match that tool's parameters, <c>&lt;/tool_call&gt;</c>.
    /// </summary>
    /// <param name="tools">The tools a call may name.</param>
    /// <param name="parameterPaths">The request parameter naming each tool's schema, for errors.</param>
    /// <exception cref="Marginal.Core.Errors.GatewayException">A tool's parameter schema uses a keyword the grammar does not support.</exception>
    internal static (string Rule, string Rules) CallGrammar(IReadOnlyList<AIFunctionDeclaration> tools, IReadOnlyList<string> parameterPaths)
    {
        var rules = new StringBuilder();
        var calls = new List<string>(tools.Count);
        for (var i = 0; i < tools.Count; i++)
        {
            var arguments = JsonGrammar.Embed(tools[i].JsonSchema, parameterPaths[i], $"t{i}-", rules);
            var name = JsonGrammar.Literal(JsonGrammar.JsonText(tools[i].Name));
            calls.Add($"\"{{\" space \"\\\"name\\\"\" space \":\" space {name} \",\" space \"\\\"arguments\\\"\" space \":\" space {arguments} \"}}\"");
        }
        rules.Append("tool-call ::= \"<tool_call>\\n\" (").Append(string.Join(" | ", calls)).Append(") \"\\n</tool_call>\"\n");
        return ("tool-call", rules.ToString());
    }

    /// <summary>
    /// Finds the calls in a finished answer: each <c>&lt;tool_call&gt;</c> block (the last may lack its end tag) whose JSON has a <c>name</c> among <paramref name="tools"/> and object <c>arguments</c>. Returns
    /// false, with no calls, when any block is not such a call: the answer is then text.
    /// </summary>
    public static bool TryParse(string answer, IReadOnlyList<AIFunctionDeclaration> tools, Func<string> newCallId, out List<FunctionCallContent> calls)
    {
        calls = [];
        var at = 0;
        while (answer.IndexOf(CallStart, at, StringComparison.Ordinal) is var start and >= 0)
        {
            var end = answer.IndexOf(CallEnd, start, StringComparison.Ordinal);
            var body = end < 0 ? answer[(start + CallStart.Length)..] : answer[(start + CallStart.Length)..end];
            if (!TryParseCall(body, tools, newCallId, out var call))
            {
                calls.Clear();
                return false;
            }
            calls.Add(call);
            at = end < 0 ? answer.Length : end + CallEnd.Length;
        }
        return calls.Count > 0;
    }

    private static bool TryParseCall(string json, IReadOnlyList<AIFunctionDeclaration> tools, Func<string> newCallId, out FunctionCallContent call)
    {
        call = null!;
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
                || !tools.Any(t => t.Name == name.GetString()))
            {
                return false;
            }
            var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
            if (root.TryGetProperty("arguments", out var args))
            {
                if (args.ValueKind != JsonValueKind.Object)
                {
                    return false;
                }
                foreach (var property in args.EnumerateObject())
                {
                    arguments[property.Name] = property.Value.Clone();
                }
            }
            call = new FunctionCallContent(newCallId(), name.GetString()!, arguments);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
