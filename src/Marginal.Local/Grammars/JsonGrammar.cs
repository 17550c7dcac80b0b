using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Marginal.Core.Errors;

namespace Marginal.Local.Grammars;

/// <summary>
/// Builds llama.cpp GBNF grammars for JSON output: any JSON object (OpenAI's <c>json_object</c> mode) or the values a
/// JSON Schema allows (<c>json_schema</c> mode and tool arguments). The grammar is what makes the output valid:
/// sampling can only pick tokens that keep the text a prefix of a sentence of the grammar, and the end-of-generation
/// token only once the sentence is complete.
/// <para>
/// Schema subset: <c>type</c> (object, array, string, number, integer, boolean, null, or a list of these),
/// <c>properties</c>, <c>required</c>, <c>additionalProperties</c> (the output holds the listed properties only, which
/// every value of <c>additionalProperties</c> allows), <c>items</c>, <c>minItems</c>/<c>maxItems</c>,
/// <c>minLength</c>/<c>maxLength</c>, <c>enum</c>, <c>const</c>, and the annotations <c>title</c>, <c>description</c>,
/// <c>default</c>, <c>examples</c>, <c>$schema</c>, <c>$id</c>, <c>$comment</c>. Any other keyword (<c>$ref</c>,
/// <c>anyOf</c>, <c>pattern</c>, <c>format</c>, <c>minimum</c>, …) is refused with a 400 naming it, rather than ignored:
/// ignoring it would let through output the schema forbids.
/// </para>
/// Properties come out in the order the schema lists them, required ones always, optional ones or not. Numbers have at
/// most 16 digits before and after the point (llama.cpp's own JSON grammar's bound); whitespace between tokens is at
/// most one space, or a newline and 20 spaces or tabs, so whitespace alone cannot fill the token budget.
/// </summary>
public sealed class JsonGrammar
{
    private static readonly HashSet<string> Supported =
    [
        "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength", "maxLength",
        "enum", "const", "title", "description", "default", "examples", "$schema", "$id", "$comment",
    ];

    // llama.cpp's primitives (common/json-schema-to-grammar.cpp, PRIMITIVE_RULES), with the value rules named json-*.
    private const string Primitives = """
        space ::= | " " | "\n" [ \t]{0,20}
        json-char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})
        json-integral ::= [0] | [1-9] [0-9]{0,15}
        json-number ::= "-"? json-integral ("." [0-9]{1,16})? ([eE] [-+]? json-integral)? space
        json-integer ::= "-"? json-integral space
        json-boolean ::= ("true" | "false") space
        json-null ::= "null" space
        json-value ::= json-object | json-array | json-string | json-number | json-boolean | json-null
        json-object ::= "{" space (json-string ":" space json-value ("," space json-string ":" space json-value)*)? "}" space
        json-array ::= "[" space (json-value ("," space json-value)*)? "]" space
        """;

    private readonly StringBuilder _rules = new();
    private readonly string _param;
    private string _prefix = "s";
    private int _next;

    private JsonGrammar(string param) => _param = param;

    /// <summary>The rule an answer in <c>json_object</c> mode must match: any JSON object.</summary>
    public const string AnyObjectRule = "json-object";

    /// <summary>
    /// A grammar whose root is the values <paramref name="schema"/> allows.
    /// </summary>
    /// <param name="schema">The JSON Schema.</param>
    /// <param name="param">The request parameter that holds the schema, named in the error when a keyword is refused.</param>
    /// <exception cref="GatewayException">InvalidRequest: the schema uses a keyword outside the subset.</exception>
    /// <param name="stringLimit">Most characters in a string whose schema sets no maxLength; 0: no bound.</param>
    public static string ForSchema(JsonElement schema, string param, int stringLimit = 0)
    {
        var grammar = new JsonGrammar(param);
        var root = grammar.Value(schema, "");
        return Compose("root ::= " + root, grammar._rules.ToString(), stringLimit);
    }

    /// <summary>
    /// Adds the rules for <paramref name="schema"/> to a grammar under construction and returns the expression that
    /// matches its values; for grammars that embed schema values in a larger sentence (tool calls).
    /// </summary>
    internal static string Embed(JsonElement schema, string param, string prefix, StringBuilder rules)
    {
        var grammar = new JsonGrammar(param) { _prefix = prefix };
        var expression = grammar.Value(schema, "");
        rules.Append(grammar._rules);
        return expression;
    }

    /// <summary>Joins a root rule, extra rules and the JSON primitives into one grammar; strings without their own bound get <paramref name="stringLimit"/> (0: none).</summary>
    internal static string Compose(string root, string rules, int stringLimit) =>
        root + "\n" + rules + Primitives + "\njson-string ::= \"\\\"\" json-char" + (stringLimit > 0 ? $"{{0,{stringLimit}}}" : "*") + " \"\\\"\" space\n";

    private string Value(JsonElement schema, string path)
    {
        if (schema.ValueKind == JsonValueKind.True)
        {
            return "json-value";
        }
        if (schema.ValueKind != JsonValueKind.Object)
        {
            throw Refuse(path, "must be a JSON Schema object");
        }
        foreach (var keyword in schema.EnumerateObject())
        {
            if (!Supported.Contains(keyword.Name))
            {
                throw GatewayException.InvalidRequest(
                    $"The local model cannot constrain its output to '{keyword.Name}' (at {Where(path)}). Supported JSON Schema keywords: {string.Join(", ", Supported)}.",
                    _param, "unsupported_schema");
            }
        }
        if (schema.TryGetProperty("const", out var constant))
        {
            return Literal(constant.GetRawText());
        }
        if (schema.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
            {
                throw Refuse(path + "/enum", "must be a non-empty array");
            }
            return "(" + string.Join(" | ", values.EnumerateArray().Select(v => Literal(v.GetRawText()))) + ")";
        }
        if (!schema.TryGetProperty("type", out var type))
        {
            return schema.TryGetProperty("properties", out _) ? Typed(schema, "object", path) : "json-value";
        }
        if (type.ValueKind == JsonValueKind.String)
        {
            return Typed(schema, type.GetString()!, path);
        }
        if (type.ValueKind == JsonValueKind.Array && type.GetArrayLength() > 0 && type.EnumerateArray().All(t => t.ValueKind == JsonValueKind.String))
        {
            return "(" + string.Join(" | ", type.EnumerateArray().Select(t => Typed(schema, t.GetString()!, path))) + ")";
        }
        throw Refuse(path + "/type", "must be a type name or a list of them");
    }

    private string Typed(JsonElement schema, string type, string path) => type switch
    {
        "string" => StringRule(schema, path),
        "number" => "json-number",
        "integer" => "json-integer",
        "boolean" => "json-boolean",
        "null" => "json-null",
        "array" => ArrayRule(schema, path),
        "object" => ObjectRule(schema, path),
        _ => throw Refuse(path + "/type", $"'{type}' is not a JSON Schema type (allowed: object, array, string, number, integer, boolean, null)"),
    };

    private string StringRule(JsonElement schema, string path)
    {
        var min = Count(schema, "minLength", path);
        var max = Count(schema, "maxLength", path);
        if (min is null && max is null)
        {
            return "json-string";
        }
        if (min > max)
        {
            throw Refuse(path + "/minLength", "is more than maxLength");
        }
        return Rule($"\"\\\"\" json-char{Repeat(min, max)} \"\\\"\" space");
    }

    private string ArrayRule(JsonElement schema, string path)
    {
        var item = schema.TryGetProperty("items", out var items) ? Value(items, path + "/items") : "json-value";
        var min = Count(schema, "minItems", path) ?? 0;
        var max = Count(schema, "maxItems", path);
        if (min > max)
        {
            throw Refuse(path + "/minItems", "is more than maxItems");
        }
        if (max == 0)
        {
            return Rule("\"[\" space \"]\" space");
        }
        // First item, then min-1 to max-1 more after commas; an empty array only when min is 0.
        var rest = $"(\",\" space {item}){Repeat(Math.Max(min - 1, 0), max - 1)}";
        var body = $"{item} {rest}";
        return Rule(min == 0 ? $"\"[\" space ({body})? \"]\" space" : $"\"[\" space {body} \"]\" space");
    }

    private string ObjectRule(JsonElement schema, string path)
    {
        if (!schema.TryGetProperty("properties", out var properties))
        {
            return "json-object";
        }
        if (properties.ValueKind != JsonValueKind.Object)
        {
            throw Refuse(path + "/properties", "must be an object");
        }
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (schema.TryGetProperty("required", out var names))
        {
            if (names.ValueKind != JsonValueKind.Array || names.EnumerateArray().Any(n => n.ValueKind != JsonValueKind.String))
            {
                throw Refuse(path + "/required", "must be an array of property names");
            }
            foreach (var name in names.EnumerateArray())
            {
                required.Add(name.GetString()!);
            }
        }
        var members = new List<(string Pair, bool Required)>();
        foreach (var property in properties.EnumerateObject())
        {
            var value = Value(property.Value, $"{path}/properties/{property.Name}");
            members.Add(($"{Literal(JsonText(property.Name))} \":\" space {value}", required.Remove(property.Name)));
        }
        if (required.Count > 0)
        {
            throw Refuse(path + "/required", $"names '{required.First()}', which is not in properties");
        }
        // Members(i, first): the members from i on; a comma precedes each but the first written. 2n rules for n properties.
        var rules = new string[members.Count + 1, 2];
        rules[members.Count, 0] = rules[members.Count, 1] = "";
        for (var i = members.Count - 1; i >= 0; i--)
        {
            for (var first = 0; first < 2; first++)
            {
                var take = (first == 1 ? "" : "\",\" space ") + members[i].Pair + " " + rules[i + 1, 0];
                var expression = members[i].Required ? take
                    : rules[i + 1, first].Length == 0 ? $"({take})?"
                    : $"({take}) | {rules[i + 1, first]}";
                rules[i, first] = Rule(expression);
            }
        }
        return Rule($"\"{{\" space {rules[0, 1]} \"}}\" space");
    }

    private string Rule(string expression)
    {
        var name = $"{_prefix}{_next++}";
        _rules.Append(name).Append(" ::= ").Append(expression).Append('\n');
        return name;
    }

    private int? Count(JsonElement schema, string keyword, string path)
    {
        if (!schema.TryGetProperty(keyword, out var value))
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var count) || count < 0)
        {
            throw Refuse($"{path}/{keyword}", "must be a non-negative integer");
        }
        return count;
    }

    private static string Repeat(int? min, int? max) => (min ?? 0, max) switch
    {
        (0, null) => "*",
        (var m, null) => $"{{{m},}}",
        (var m, { } x) => $"{{{m},{x}}}",
    };

    /// <summary><paramref name="value"/> as a JSON string, quotes included.</summary>
    internal static string JsonText(string value) => "\"" + JsonEncodedText.Encode(value, JavaScriptEncoder.UnsafeRelaxedJsonEscaping) + "\"";

    /// <summary>A GBNF string literal matching <paramref name="text"/> exactly, then optional whitespace.</summary>
    internal static string Literal(string text)
    {
        var literal = new StringBuilder("\"");
        foreach (var c in text)
        {
            _ = c switch
            {
                '"' => literal.Append("\\\""),
                '\\' => literal.Append("\\\\"),
                '\n' => literal.Append("\\n"),
                '\r' => literal.Append("\\r"),
                '\t' => literal.Append("\\t"),
                < ' ' or '\x7F' => literal.Append("\\x").Append(((int)c).ToString("X2", CultureInfo.InvariantCulture)),
                _ => literal.Append(c),
            };
        }
        return literal.Append("\" space").ToString();
    }

    private static string Where(string path) => path.Length == 0 ? "the schema's root" : "#" + path;

    private GatewayException Refuse(string path, string problem) =>
        GatewayException.InvalidRequest($"The JSON Schema's {Where(path)} {problem}.", _param, "invalid_schema");
}
