using Marginal.Core.Errors;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Providers;

/// <summary>
/// Fields of OpenAI's chat API that Microsoft.Extensions.AI has no slot for. The host puts what the client sent in
/// <see cref="ChatOptions.AdditionalProperties"/> under these keys; an OpenAI-compatible provider forwards them as sent,
/// and a provider whose API has no equivalent refuses them (400 naming the field) rather than dropping them.
/// </summary>
public static class OpenAIOnlyFields
{
    /// <summary><c>logprobs</c>: true to get the log-probability of each output token.</summary>
    public const string Logprobs = "logprobs";

    /// <summary><c>top_logprobs</c>: how many alternatives (0–20) to return per token.</summary>
    public const string TopLogprobs = "top_logprobs";

    /// <summary>
    /// <c>logit_bias</c>, kept as a canonical string (<c>token:bias</c> pairs, by token id, comma-separated) so the
    /// response cache's key, which writes each extra property as text, tells two biases apart.
    /// </summary>
    public const string LogitBias = "logit_bias";

    /// <summary>
    /// <c>strict</c>: on a tool declaration's additional properties for <c>tools[].function.strict</c>, on the options for
    /// <c>response_format.json_schema.strict</c>. The key Microsoft.Extensions.AI.OpenAI reads too.
    /// </summary>
    public const string Strict = "strict";

    /// <summary>The key, in a response's or an update's additional properties, of the upstream's <c>logprobs</c> object (raw JSON).</summary>
    public const string ResponseLogprobs = "logprobs";

    /// <summary>Throws a 400 naming the first OpenAI-only field the request set, for a provider that has no equivalent.</summary>
    public static void RejectOn(ChatOptions? options, string providerKind)
    {
        if (options?.AdditionalProperties is not { } properties)
        {
            return;
        }
        foreach (var field in (ReadOnlySpan<string>)[Logprobs, TopLogprobs, LogitBias])
        {
            if (properties.ContainsKey(field))
            {
                throw GatewayException.InvalidRequest(
                    $"'{field}' is not supported by the {providerKind} provider that serves this model; send it only to OpenAI-compatible models.",
                    field, "unsupported_parameter");
            }
        }
    }

    /// <summary>Parses the canonical <see cref="LogitBias"/> text back into token ids and biases.</summary>
    public static IEnumerable<(int Token, int Bias)> ParseLogitBias(string canonical)
    {
        foreach (var pair in canonical.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = pair.IndexOf(':', StringComparison.Ordinal);
            yield return (int.Parse(pair.AsSpan(0, colon), System.Globalization.CultureInfo.InvariantCulture),
                int.Parse(pair.AsSpan(colon + 1), System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
