using System.Globalization;
using System.Runtime.CompilerServices;
using Marginal.Core.Errors;
using Marginal.Core.Pricing;
using Marginal.Core.Requests;
using Marginal.Gateway.Embeddings;
using Marginal.Gateway.Model;
using Marginal.Gateway.Pricing;
using Marginal.Gateway.Routing.Aliases;
using Marginal.Gateway.Tokens;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Routing;

/// <summary>
/// Picks the configured model a request runs on. A configured model is served as named (reason <c>explicit</c>). A route
/// alias (<c>routes:</c>) decides, in order: the first matching policy rule (<c>policy:&lt;name&gt;</c>); the strong model
/// for a tenant whose downgrades are disabled (<c>no-downgrade</c>); the learned router's score against the threshold
/// (<c>learned:&lt;score&gt;</c>); the cascade (<c>cascade:accepted</c> or <c>cascade:escalated:&lt;check&gt;</c>, also after a
/// learned choice of the weak model); else the route's default (<c>default</c>). An alias request records the saving
/// against the strong model as lever <c>routing</c>: the same tokens at the strong model's price minus what was paid.
/// A cascade runs on whole answers, so a streamed request on a cascade route is answered from the buffered answer in
/// one chunk. Throws <see cref="GatewayException"/> (not found, <c>model_not_found</c>) for an unknown name.
/// Thread-safe.
/// </summary>
public sealed class ModelRoutingChatClient(IChatClient innerClient, GatewayModelSource models, RouteFeedback feedback) : DelegatingChatClient(innerClient)
{
    internal IChatClient Inner => InnerClient;

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var prompt = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var (routed, decision) = Route(prompt, options);
        if (decision is { Cascade: true })
        {
            return await CascadeAsync(prompt, routed, decision, cancellationToken);
        }
        var response = await base.GetResponseAsync(prompt, routed, cancellationToken);
        RecordSaving(decision, routed.GetGatewayContext(), prompt, response.Usage, response.Text);
        return response;
    }

    /// <summary>
    /// A request for a configured model gets the inner stream itself (no extra step per update); an alias's stream is
    /// watched for its usage and text, to record the routing saving. A bad model name fails on the first read, as any
    /// other stream error.
    /// </summary>
    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var prompt = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        ChatOptions routed;
        Decision? decision;
        try
        {
            (routed, decision) = Route(prompt, options);
        }
        catch (GatewayException error)
        {
            return Failed(error);
        }
        return decision is null
            ? base.GetStreamingResponseAsync(prompt, routed, cancellationToken)
            : RoutedStreamAsync(prompt, routed, decision, cancellationToken);
    }

    private static async IAsyncEnumerable<ChatResponseUpdate> Failed(GatewayException error)
    {
        await Task.CompletedTask;
        throw error;
#pragma warning disable CS0162 // an iterator needs a yield to be one
        yield break;
#pragma warning restore CS0162
    }

    private async IAsyncEnumerable<ChatResponseUpdate> RoutedStreamAsync(IReadOnlyList<ChatMessage> prompt, ChatOptions routed, Decision decision, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (decision is { Cascade: true })
        {
            var answer = await CascadeAsync(prompt, routed, decision, cancellationToken);
            foreach (var update in answer.ToChatResponseUpdates())
            {
                yield return update;
            }
            yield break;
        }
        UsageDetails? usage = null;
        var text = new System.Text.StringBuilder();
        await foreach (var update in base.GetStreamingResponseAsync(prompt, routed, cancellationToken))
        {
            foreach (var content in update.Contents)
            {
                if (content is UsageContent u)
                {
                    usage = u.Details;
                }
                else if (content is TextContent t)
                {
                    text.Append(t.Text);
                }
            }
            yield return update;
        }
        RecordSaving(decision, routed.GetGatewayContext(), prompt, usage, text.ToString());
    }

    /// <summary>A route decision: the model, why, whether the cascade runs, and the alias it came from.</summary>
    private sealed record Decision(RouteAlias Alias, string Model, string Reason, bool Cascade);

    private (ChatOptions Routed, Decision? Decision) Route(IReadOnlyList<ChatMessage> prompt, ChatOptions? options)
    {
        var requested = options?.ModelId;
        if (options is null || string.IsNullOrEmpty(requested))
        {
            throw GatewayException.InvalidRequest("You must provide a model parameter.", "model", "missing_required_parameter");
        }
        var current = models.Current;
        var context = options.GetGatewayContext();
        if (current.Models.TryGetValue(requested, out var route) && route.Type == "chat")
        {
            if (context is not null)
            {
                context.RequestedModel ??= requested;
                context.RouteReason = "explicit";
            }
            return (options, null);
        }
        if (!current.Routes.TryGetValue(requested, out var alias))
        {
            throw GatewayException.ModelNotFound($"The model '{requested}' does not exist or is not a chat model or route on this gateway.");
        }
        var decision = Decide(alias, new RouteRequest(prompt, options, context), context);
        var routed = options.Clone();
        routed.ModelId = decision.Model;
        if (context is not null)
        {
            context.RequestedModel ??= requested;
            context.RouteReason = decision.Reason;
        }
        return (routed, decision);
    }

    private Decision Decide(RouteAlias alias, RouteRequest request, GatewayContext? context)
    {
        foreach (var policy in alias.Policies)
        {
            if (policy.Matches(request))
            {
                return new Decision(alias, policy.Model, $"policy:{policy.Name}", false);
            }
        }
        if (alias.NoDowngradeTenants.Contains(request.Tenant))
        {
            return new Decision(alias, alias.Strong, "no-downgrade", false);
        }
        if (alias.Learned is { } learned)
        {
            var embedding = MiniLmEmbeddingGenerator.Shared.Embed(request.LastUserText);
            var score = learned.Scorer.Score(embedding, request.LastUserText.Length);
            if (learned.Feedback)
            {
                score = feedback.Adjust(alias.Name, embedding, score);
            }
            var reason = $"learned:{score.ToString("0.###", CultureInfo.InvariantCulture)}";
            if (score >= learned.Threshold)
            {
                return new Decision(alias, alias.Strong, reason, false);
            }
            if (learned.Feedback && context is not null)
            {
                feedback.Remember(context.RequestId, alias.Name, embedding);
            }
            return new Decision(alias, alias.Weak!, alias.Cascade is null ? reason : $"{reason},cascade", alias.Cascade is not null);
        }
        return alias.Cascade is not null
            ? new Decision(alias, alias.Weak!, "cascade", true)
            : new Decision(alias, alias.DefaultModel, "default", false);
    }

    /// <summary>
    /// The weak model answers; a failed check (or a weak chain that failed over entirely) sends the request to the strong
    /// model, and the discarded answer's cost stays on the record.
    /// </summary>
    private async Task<ChatResponse> CascadeAsync(IReadOnlyList<ChatMessage> prompt, ChatOptions routed, Decision decision, CancellationToken cancellationToken)
    {
        var context = routed.GetGatewayContext();
        var cascade = decision.Alias.Cascade!;
        string? failure;
        try
        {
            var weak = await base.GetResponseAsync(prompt, routed, cancellationToken);
            failure = cascade.Checks.Failure(weak, routed) ?? await VerifyAsync(cascade, prompt, weak.Text, context, cancellationToken);
            if (failure is null)
            {
                Reason(context, decision, "cascade:accepted");
                RecordSaving(decision, context, prompt, weak.Usage, weak.Text);
                return weak;
            }
            if (context is not null)
            {
                context.DiscardedCostUsd += context.OwnedCost?.FullyLoadedUsd ?? CostOf(context.ServedModel, prompt, weak.Usage, weak.Text) ?? 0;
                context.OwnedCost = null;
            }
        }
        catch (GatewayException error) when (error.IsRetryableElsewhere)
        {
            failure = "error";
        }
        Reason(context, decision, $"cascade:escalated:{failure}");
        var strong = routed.Clone();
        strong.ModelId = decision.Alias.Strong;
        var response = await base.GetResponseAsync(prompt, strong, cancellationToken);
        RecordSaving(decision, context, prompt, response.Usage, response.Text);
        return response;
    }

    private static void Reason(GatewayContext? context, Decision decision, string outcome)
    {
        if (context is not null)
        {
            context.RouteReason = decision.Reason == "cascade" ? outcome : $"{decision.Reason.Replace(",cascade", "", StringComparison.Ordinal)},{outcome}";
        }
    }

    /// <summary>The verifier's check: null when it grades the answer at least the route's minimum, else <c>verifier</c>.</summary>
    private async Task<string?> VerifyAsync(CascadeRoute cascade, IReadOnlyList<ChatMessage> prompt, string answer, GatewayContext? context, CancellationToken cancellationToken)
    {
        if (cascade.Verifier is not { } verifier)
        {
            return null;
        }
        var question = prompt.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        ChatMessage[] grading =
        [
            new(ChatRole.System, "You grade answers. Reply with one integer from 0 (wrong or useless) to 10 (correct and complete), nothing else."),
            new(ChatRole.User, $"Question:\n{question}\n\nAnswer:\n{answer}\n\nGrade:"),
        ];
        // Sent without the request's context: the grade is not the answer, so it must not become the served model.
        var grade = await base.GetResponseAsync(grading, new ChatOptions { ModelId = verifier, Temperature = 0, MaxOutputTokens = 4 }, cancellationToken);
        var digits = new string([.. grade.Text.SkipWhile(c => !char.IsAsciiDigit(c)).TakeWhile(char.IsAsciiDigit)]);
        var score = int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : -1;
        if (context is not null)
        {
            context.DiscardedCostUsd += CostOf(verifier, grading, grade.Usage, grade.Text) ?? 0;
            context.Attempts.Add(new UpstreamAttempt(verifier, models.Current.Models[verifier].Primary.Provider.Name, $"verifier:{score}"));
        }
        return score >= cascade.MinScore ? null : "verifier";
    }

    /// <summary>
    /// Records lever <c>routing</c>: what the same tokens would have cost on the route's strong model, minus what the request
    /// paid (the served model, plus any discarded cascade answer). Negative when the route spent more than the strong model alone.
    /// </summary>
    private void RecordSaving(Decision? decision, GatewayContext? context, IReadOnlyList<ChatMessage> prompt, UsageDetails? usage, string output)
    {
        if (decision is null || context?.ServedModel is not { } served || (served == decision.Alias.Strong && context.DiscardedCostUsd == 0))
        {
            return;
        }
        var counterfactual = CostOf(decision.Alias.Strong, prompt, usage, output);
        var paid = context.OwnedCost?.FullyLoadedUsd ?? CostOf(served, prompt, usage, output);
        if (counterfactual is { } strong && paid is { } actual)
        {
            context.Savings.Add(new("routing", strong - actual - context.DiscardedCostUsd));
        }
    }

    /// <summary>The list-price cost of one answer on <paramref name="model"/>: reported usage, else counted tokens; null when unpriced.</summary>
    private decimal? CostOf(string? model, IReadOnlyList<ChatMessage> prompt, UsageDetails? usage, string output)
    {
        return model is not null && models.Current.Models.TryGetValue(model, out var route) ? AnswerPricing.ListCost(route.Primary.Catalog, usage, prompt, output) : null;
    }
}

public static class RoutingChatClientBuilderExtensions
{
    /// <summary>Adds routing; <paramref name="feedback"/> is the memory feedback teaches (the server shares it with <c>/v1/feedback</c>).</summary>
    public static ChatClientBuilder UseRouting(this ChatClientBuilder builder, GatewayModelSource models, RouteFeedback? feedback = null) =>
        builder.Use(inner => new ModelRoutingChatClient(inner, models, feedback ?? new RouteFeedback()));
}
