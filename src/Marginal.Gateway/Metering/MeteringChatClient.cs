using System.Runtime.CompilerServices;
using Marginal.Core.Requests;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Metering;

/// <summary>
/// Outermost middleware: sees every request and its final usage, cache hits included.
/// Today it captures the usage the upstream reported into the request's <see cref="GatewayContext"/>;
/// pricing and the durable ledger build on this seam.
/// </summary>
public sealed class MeteringChatClient(IChatClient innerClient) : DelegatingChatClient(innerClient)
{
    internal IChatClient Inner => InnerClient;

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var response = await base.GetResponseAsync(messages, options, cancellationToken);
        if (options.GetGatewayContext() is { } context)
        {
            context.Usage = response.Usage;
        }
        return response;
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var context = options.GetGatewayContext();
        await foreach (var update in base.GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            if (context is not null)
            {
                foreach (var content in update.Contents)
                {
                    if (content is UsageContent usage)
                    {
                        context.Usage = usage.Details;
                    }
                }
            }
            yield return update;
        }
    }
}

public static class MeteringChatClientBuilderExtensions
{
    public static ChatClientBuilder UseMetering(this ChatClientBuilder builder) =>
        builder.Use(inner => new MeteringChatClient(inner));
}
