using Marginal.Core.Requests;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Admission;

/// <summary>
/// Admission for embeddings, as <see cref="AdmissionChatClient"/> for chat: budgets and rate limits hold alike, the
/// inputs counting as the prompt and nothing generated (no output tokens reserved). The free tier's downgrade names a
/// chat model, so an embeddings request keeps the model it asked for. Settles once the request ends (a failed one
/// releases what it reserved).
/// </summary>
public sealed class AdmissionEmbeddingGenerator(IEmbeddingGenerator<string, Embedding<float>> inner, AdmissionPolicy policy)
    : DelegatingEmbeddingGenerator<string, Embedding<float>>(inner)
{
    public override async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (options.GetGatewayContext() is not { } context)
        {
            return await base.GenerateAsync(values, options, cancellationToken);
        }
        var prompt = new List<ChatMessage>();
        foreach (var text in values)
        {
            prompt.Add(new ChatMessage(ChatRole.User, text));
        }
        var ticket = await policy.AdmitAsync(context, prompt, new ChatOptions { ModelId = options!.ModelId, MaxOutputTokens = 0 }, cancellationToken);
        try
        {
            return await base.GenerateAsync(values, options, cancellationToken);
        }
        finally
        {
            if (ticket is not null)
            {
                await policy.SettleAsync(ticket, context);
            }
        }
    }
}
