using System.Text.Json;
using System.Text.RegularExpressions;
using Json.Schema;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Routing.Aliases;

/// <summary>
/// The cascade's checks on the weak model's answer. A failed check names itself (<c>json_schema</c>, <c>refusal</c>)
/// and the request escalates to the strong model. Immutable and thread-safe.
/// </summary>
public sealed class CascadeChecks
{
    /// <summary>
    /// Refusal openings common to current chat models (observed wording of OpenAI, Anthropic and Llama models' refusals;
    /// a starting list, replace it per route with <c>refusal_patterns</c>).
    /// </summary>
    public static readonly string[] DefaultRefusalPatterns =
    [
        @"^\s*(I'm|I am) sorry,? but I (can't|cannot|won't|am unable to)",
        @"^\s*I (can't|cannot|won't|am unable to|am not able to) (help|assist|comply|provide|do that)",
        @"^\s*(Sorry|Unfortunately),? I (can't|cannot|am unable to)",
        @"\bas an AI( language model)?, I (can't|cannot|don't|am unable)",
    ];

    private readonly Regex[] _refusals;

    public CascadeChecks(IEnumerable<string> checks, IEnumerable<string>? refusalPatterns)
    {
        Names = [.. checks];
        _refusals = [.. (refusalPatterns ?? DefaultRefusalPatterns).Select(p => new Regex(p, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(50)))];
    }

    public IReadOnlyList<string> Names { get; }

    /// <summary>The first check (other than the verifier) that <paramref name="response"/> fails, or null when it passes them all.</summary>
    public string? Failure(ChatResponse response, ChatOptions options)
    {
        var text = response.Text;
        if (Names.Contains("json_schema") && options.ResponseFormat is ChatResponseFormatJson json && !IsValidJson(text, json.Schema))
        {
            return "json_schema";
        }
        if (Names.Contains("refusal") && (response.FinishReason == ChatFinishReason.ContentFilter || IsRefusal(text)))
        {
            return "refusal";
        }
        return null;
    }

    private bool IsRefusal(string text)
    {
        foreach (var refusal in _refusals)
        {
            try
            {
                if (refusal.IsMatch(text))
                {
                    return true;
                }
            }
            catch (RegexMatchTimeoutException)
            {
                // A pattern too slow for this text decides nothing.
            }
        }
        return false;
    }

    /// <summary>True when <paramref name="text"/> is JSON and, given a schema, valid under it (JSON Schema 2020-12 by default).</summary>
    public static bool IsValidJson(string text, JsonElement? schema)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException)
        {
            return false;
        }
        using (document)
        {
            if (schema is not { } s)
            {
                return document.RootElement.ValueKind == JsonValueKind.Object;
            }
            try
            {
                return JsonSchema.FromText(s.GetRawText()).Evaluate(document.RootElement).IsValid;
            }
            catch (Exception ex) when (ex is JsonException or ArgumentException or InvalidOperationException or FormatException)
            {
                // A schema the validator cannot read cannot fail the answer: the provider accepted it as given.
                return true;
            }
        }
    }
}
