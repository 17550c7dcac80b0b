using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Caching;

/// <summary>
/// The response-cache seam, between metering and routing so a hit is metered and never routed.
/// It passes every request through: exact and semantic caching are not built yet.
/// </summary>
public sealed class ResponseCacheChatClient(IChatClient innerClient) : DelegatingChatClient(innerClient)
{
    internal IChatClient Inner => InnerClient;
}

public static class ResponseCacheChatClientBuilderExtensions
{
    public static ChatClientBuilder UseResponseCache(this ChatClientBuilder builder) =>
        builder.Use(inner => new ResponseCacheChatClient(inner));
}
