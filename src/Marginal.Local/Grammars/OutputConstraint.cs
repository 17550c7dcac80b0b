using System.Text;
using Marginal.Core.Errors;
using Marginal.Local.Tools;
using Microsoft.Extensions.AI;

namespace Marginal.Local.Grammars;

/// <summary>
/// What a request asks of the output's shape, as the tools the model is shown and the grammar its sampling follows:
/// <list type="bullet">
/// <item><c>response_format: json_object</c>: any JSON object; <c>json_schema</c>: the schema's values (<see cref="JsonGrammar"/>);</item>
/// <item><c>tool_choice: required</c>: exactly one <c>&lt;tool_call&gt;</c> of any tool; a named function: one call of that tool;</item>
/// <item><c>tool_choice: auto</c> (or unset) with tools: no grammar, unless a response format is asked too, when the
/// answer is either one call or the format;</item>
/// <item><c>tool_choice: none</c>: the tools are neither shown nor callable.</item>
/// </list>
/// </summary>
/// <param name="Tools">The tools described to the model (empty: none).</param>
/// <param name="CallRequired">True when the answer must be a call.</param>
/// <param name="Grammar">The GBNF grammar, or null for free text.</param>
/// <param name="Param">The request parameter an error about the grammar names.</param>
public sealed record OutputConstraint(IReadOnlyList<AIFunctionDeclaration> Tools, bool CallRequired, string? Grammar, string? Param)
{
    private static readonly OutputConstraint None = new([], false, null, null);

    /// <exception cref="GatewayException">InvalidRequest: a schema outside the supported subset, or a named function that is not among the tools.</exception>
    /// <param name="options">The request's options.</param>
    /// <param name="stringLimit">Most characters in a JSON string whose schema sets no maxLength; 0: no bound.</param>
    public static OutputConstraint For(ChatOptions? options, int stringLimit = 0)
    {
        if (options is null)
        {
            return None;
        }
        var tools = new List<AIFunctionDeclaration>();
        var paths = new List<string>();
        if (options.ToolMode is not NoneChatToolMode && options.Tools is { Count: > 0 } all)
        {
            for (var i = 0; i < all.Count; i++)
            {
                if (all[i] is AIFunctionDeclaration function)
                {
                    tools.Add(function);
                    paths.Add($"tools[{i}].function.parameters");
                }
            }
        }
        var required = options.ToolMode is RequiredChatToolMode && tools.Count > 0;
        var callable = tools;
        if (options.ToolMode is RequiredChatToolMode { RequiredFunctionName: { } name })
        {
            var index = tools.FindIndex(t => t.Name == name);
            if (index < 0)
            {
                throw GatewayException.InvalidRequest($"'tool_choice' names the function '{name}', which is not in 'tools'.", "tool_choice", "invalid_value");
            }
            callable = [tools[index]];
            paths = [paths[index]];
        }
        var rules = new StringBuilder();
        string? format = null;
        var param = "response_format";
        if (!required && options.ResponseFormat is ChatResponseFormatJson json)
        {
            format = json.Schema is { } schema
                ? JsonGrammar.Embed(schema, param = "response_format.json_schema.schema", "f-", rules)
                : JsonGrammar.AnyObjectRule;
        }
        string? call = null;
        if (required || (format is not null && tools.Count > 0))
        {
            (call, var callRules) = ToolCallFormat.CallGrammar(callable, paths);
            rules.Append(callRules);
            param = "tools";
        }
        var root = (call, format) switch
        {
            (null, null) => null,
            ({ } c, null) => c,
            (null, { } f) => f,
            ({ } c, { } f) => $"{c} | {f}",
        };
        return new OutputConstraint(tools, required, root is null ? null : JsonGrammar.Compose("root ::= " + root, rules.ToString(), stringLimit), param);
    }
}
