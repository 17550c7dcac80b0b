using Marginal.Core.Errors;
using Marginal.Core.Requests;
using Marginal.Gateway.Pipeline;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Routing;

/// <summary>
/// Picks the configured model a request runs on. Today: the model the client named, if configured
/// (reason <c>explicit</c>); policy, complexity and learned routing come here later.
/// Throws <see cref="GatewayException"/> (invalid request, <c>model_not_found</c>) for an unknown model.
/// </summary>
public sealed class ModelRoutingChatClient(IChatClient innerClient, GatewayModelSource models) : DelegatingChatClient(innerClient)
{
    internal IChatClient Inner => InnerClient;

    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetResponseAsync(messages, Route(options), cancellationToken);

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetStreamingResponseAsync(messages, Route(options), cancellationToken);

    private ChatOptions Route(ChatOptions? options)
    {
        var requested = options?.ModelId;
        if (string.IsNullOrEmpty(requested))
        {
            throw GatewayException.InvalidRequest("You must provide a model parameter.", "model", "missing_required_parameter");
        }
        if (!models.Current.Models.TryGetValue(requested, out var route) || route.Type != "chat")
        {
            throw GatewayException.InvalidRequest($"The model '{requested}' does not exist or is not a chat model on this gateway.", "model", "model_not_found");
        }
        var context = options!.GetGatewayContext();
        if (context is not null)
        {
            context.RequestedModel ??= requested;
            context.RouteReason = "explicit";
        }
        return options!;
    }
}

public static class RoutingChatClientBuilderExtensions
{
    public static ChatClientBuilder UseRouting(this ChatClientBuilder builder, GatewayModelSource models) =>
        builder.Use(inner => new ModelRoutingChatClient(inner, models));
}
