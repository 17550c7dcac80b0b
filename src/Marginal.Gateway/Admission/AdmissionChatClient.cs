using System.Runtime.CompilerServices;
using Marginal.Core.Requests;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Admission;

/// <summary>
/// The pipeline's outermost stage: admits a request under its tenant's free tier, prepaid credit, budgets and rate
/// limits (<see cref="AdmissionPolicy"/>) before anything else runs, and settles its reservation to what it cost once
/// the answer is complete (a stream: once it ends, fails or is abandoned). Outside idempotent replay, so a replayed
/// answer is admitted and settles at cost 0. Writes only <see cref="GatewayContext.Admission"/> (and the free tier's
/// tag); the server turns that into headers. A request without a context, or a deferred job, passes through.
/// </summary>
public sealed class AdmissionChatClient(IChatClient inner, AdmissionPolicy policy) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var context = options.GetGatewayContext();
        if (context is null || context.Deferred)
        {
            return await base.GetResponseAsync(messages, options, cancellationToken);
        }
        var ticket = await policy.AdmitAsync(context, messages, options!, cancellationToken);
        try
        {
            return await base.GetResponseAsync(messages, options, cancellationToken);
        }
        finally
        {
            if (ticket is not null)
            {
                await policy.SettleAsync(ticket, context);
            }
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var context = options.GetGatewayContext();
        var ticket = context is null || context.Deferred ? null : await policy.AdmitAsync(context, messages, options!, cancellationToken);
        try
        {
            await foreach (var update in base.GetStreamingResponseAsync(messages, options, cancellationToken))
            {
                yield return update;
            }
        }
        finally
        {
            if (ticket is not null)
            {
                await policy.SettleAsync(ticket, context!);
            }
        }
    }
}

public static class AdmissionChatClientBuilderExtensions
{
    /// <summary>Adds admission (<see cref="AdmissionChatClient"/>) under <paramref name="policy"/>; nothing when it is null (no billing plans).</summary>
    public static ChatClientBuilder UseAdmission(this ChatClientBuilder builder, AdmissionPolicy? policy) =>
        policy is null ? builder : builder.Use(inner => new AdmissionChatClient(inner, policy));
}
