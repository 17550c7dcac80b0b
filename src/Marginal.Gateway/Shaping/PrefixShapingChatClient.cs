using Marginal.Gateway.Model;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Shaping;

/// <summary>
/// Keeps the cacheable prefix of a request stable so the provider's prompt cache hits: providers build the prompt
/// from the tool definitions first, then the messages, and cache it by exact prefix (OpenAI: prompts of 1,024 tokens or
/// more, matched in 128-token steps; https://platform.openai.com/docs/guides/prompt-caching, read 2026-11-28). Clients
/// that build their tool list from a dictionary or a set send the same tools in a different order each time, which
/// breaks the prefix at its first token. This middleware sorts the tools by name (ordinal), which changes nothing
/// the model is told: tools are a set. It never touches messages, system prompts included: their order is the
/// conversation. Runs after routing (it knows the model) and is skipped for models under
/// <c>shaping.exclude_models</c>. The client's own options object is not changed: a shaped copy goes upstream.
/// </summary>
public sealed class PrefixShapingChatClient(IChatClient innerClient, GatewayModelSource models) : DelegatingChatClient(innerClient)
{
    internal IChatClient Inner => InnerClient;

    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetResponseAsync(messages, Shape(options), cancellationToken);

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetStreamingResponseAsync(messages, Shape(options), cancellationToken);

    private ChatOptions? Shape(ChatOptions? options)
    {
        var shaping = models.Current.Config.Shaping;
        if (options?.Tools is not { Count: > 1 } tools || !shaping.SortTools
            || (options.ModelId is { } model && shaping.ExcludeModels.Contains(model)) || IsSorted(tools))
        {
            return options;
        }
        var shaped = options.Clone();
        // Clone copies AdditionalProperties into a new dictionary; the gateway context inside is the same object.
        shaped.Tools = SortedTools(tools);
        return shaped;
    }

    /// <summary>The tools in ordinal order of name; a stable sort, so tools with the same name keep their order.</summary>
    public static List<AITool> SortedTools(IList<AITool> tools) => [.. tools.OrderBy(t => t.Name, StringComparer.Ordinal)];

    private static bool IsSorted(IList<AITool> tools)
    {
        for (var i = 1; i < tools.Count; i++)
        {
            if (string.CompareOrdinal(tools[i - 1].Name, tools[i].Name) > 0)
            {
                return false;
            }
        }
        return true;
    }
}

public static class PrefixShapingChatClientBuilderExtensions
{
    /// <summary>Adds prefix shaping (sorted tools) per the <c>shaping:</c> section of the current config.</summary>
    public static ChatClientBuilder UsePrefixShaping(this ChatClientBuilder builder, GatewayModelSource models) =>
        builder.Use(inner => new PrefixShapingChatClient(inner, models));
}
