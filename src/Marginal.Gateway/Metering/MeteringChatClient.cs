using System.Runtime.CompilerServices;
using System.Text;
using Marginal.Core.Errors;
using Marginal.Core.Ledger;
using Marginal.Core.Pricing;
using Marginal.Core.Requests;
using Marginal.Economics.Invoices;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Model;
using Marginal.Gateway.Pricing;
using Marginal.Gateway.Tokens;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Metering;

/// <summary>
/// Outermost middleware: sees every request, cache hits included, and turns it into one <see cref="UsageRecord"/>.
/// Tokens come from the provider's usage when it reports one, else from <see cref="TokenCounter"/>; cost from the served
/// model's price-book entry. The record is durable before the answer is complete: a non-streamed response returns only
/// after its record is committed, and a stream ends (before the server writes <c>[DONE]</c>) only after it is. A failed
/// request is recorded too, with the tokens a broken stream had already used. Requests without a
/// <see cref="GatewayContext"/> pass through unmetered.
/// </summary>
public sealed class MeteringChatClient(IChatClient innerClient, GatewayModelSource models, LedgerWriter? ledger, TimeProvider time, TenantAccounts? accounts = null) : DelegatingChatClient(innerClient)
{
    internal IChatClient Inner => InnerClient;

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (options.GetGatewayContext() is not { } context)
        {
            return await base.GetResponseAsync(messages, options, cancellationToken);
        }
        var meter = new Meter(context, time);
        ChatResponse response;
        try
        {
            response = await base.GetResponseAsync(messages, options, cancellationToken);
        }
        catch (Exception error) when (StatusOf(error, cancellationToken) is { } status)
        {
            await RecordAsync(meter, messages, null, status, streamed: false);
            throw;
        }
        context.Usage = response.Usage;
        await RecordAsync(meter, messages, response.Usage is null ? response.Text : null, "ok", streamed: false);
        return response;
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (options.GetGatewayContext() is not { } context)
        {
            await foreach (var update in base.GetStreamingResponseAsync(messages, options, cancellationToken))
            {
                yield return update;
            }
            yield break;
        }
        var meter = new Meter(context, time);
        // The streamed text, kept only to count it when the provider reports no usage.
        var text = new StringBuilder();
        string? status = null;
        await using var updates = base.GetStreamingResponseAsync(messages, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                bool more;
                try
                {
                    more = await updates.MoveNextAsync();
                }
                catch (Exception error) when (StatusOf(error, cancellationToken) is { } failed)
                {
                    status = failed;
                    throw;
                }
                if (!more)
                {
                    break;
                }
                var update = updates.Current;
                foreach (var content in update.Contents)
                {
                    switch (content)
                    {
                        case UsageContent usage:
                            context.Usage = usage.Details;
                            break;
                        case TextContent { Text.Length: > 0 } part:
                            meter.FirstToken();
                            text.Append(part.Text);
                            break;
                    }
                }
                yield return update;
            }
            status = "ok";
        }
        finally
        {
            // Also reached when the consumer stops early (the client went away): those tokens were paid for too.
            await RecordAsync(meter, messages, context.Usage is null ? text.ToString() : null, status ?? "client_closed", streamed: true);
        }
    }

    private static string? StatusOf(Exception error, CancellationToken cancellationToken) => error switch
    {
        GatewayException gateway => gateway.Code ?? gateway.Kind.ToString(),
        OperationCanceledException when cancellationToken.IsCancellationRequested => "client_closed",
        _ => null,
    };

    private async Task RecordAsync(Meter meter, IEnumerable<ChatMessage> messages, string? unreportedOutput, string status, bool streamed)
    {
        var context = meter.Context;
        var catalog = context.ServedModel is { } served && models.Current.Models.TryGetValue(served, out var route) ? route.Primary.Catalog : null;
        var (usage, source) = Usage(context, catalog, messages, unreportedOutput, status);
        // Owned capacity is charged from the pool's cost and the request's busy time, not from a list price.
        var owned = context.OwnedCost;
        // A cache hit called no model: it costs nothing, and its saving (lever cache) is what the original call cost.
        var cacheHit = context.CacheOutcome is ResponseCacheChatClient.HitExact or ResponseCacheChatClient.HitSemantic;
        var cost = cacheHit ? 0m : owned?.FullyLoadedUsd ?? (catalog is null ? (decimal?)null : CostCalculator.Cost(usage, catalog.Price));
        // Answers paid for and discarded on the way (a cascade's rejected cheap answer) are part of this request's cost.
        var discarded = context.DiscardedCostUsd;
        cost = discarded == 0 ? cost : (cost ?? 0) + discarded;
        context.CostUsd = cost;
        var capacity = owned is not null ? CapacityKind.Owned : catalog?.Capacity ?? ServedCapacity(context);
        var record = new UsageRecord(
            // Only a successful answer holds the request id, so a client that retries a failure with the same
            // Idempotency-Key is billed for the answer it finally got; failed attempts are kept under ids of their own.
            Id: status == "ok" || context.RequestId.Length == 0 ? context.RequestId : OwnId(context.RequestId, status),
            Time: meter.Arrived,
            Tenant: context.Tenant,
            KeyId: context.KeyId,
            RequestedModel: context.RequestedModel ?? "",
            ServedModel: context.ServedModel,
            Provider: context.Provider,
            CapacitySource: capacity?.Name(),
            Status: status,
            Streamed: streamed,
            InputTokens: usage.InputTokens,
            CachedInputTokens: usage.CachedInputTokens,
            CacheWriteTokens: usage.CacheWrite5mTokens + usage.CacheWrite1hTokens,
            OutputTokens: usage.OutputTokens,
            ReasoningTokens: usage.ReasoningTokens,
            UsageSource: source,
            LatencyMs: meter.ElapsedMs(),
            TimeToFirstTokenMs: meter.TimeToFirstTokenMs,
            CostUsd: cost,
            // API and rented capacity cost the same at the margin as fully loaded; owned pools record both views.
            MarginalCostUsd: owned is not null ? owned.MarginalUsd + discarded : cost,
            RevenueUsd: context.RevenueUsd,
            CacheOutcome: context.CacheOutcome,
            RouteReason: context.RouteReason,
            Levers: context.Savings.Count == 0 ? "" : LeverSavings.Format(context.Savings),
            SavingsUsd: context.Savings.Count == 0 ? null : context.Savings.Sum(s => s.Value),
            Attempts: context.Attempts.Count,
            CacheSimilarity: context.CacheSimilarity,
            Tags: context.Tags.Count == 0 ? "" : string.Join(',', context.Tags),
            RequestHash: context.RequestHash);
        var repeat = status == "ok" && context.AnswerGone;
        if (repeat)
        {
            // The key's request is billed already and its answer was no longer kept: this call is recorded, not billed again.
            record = Repeated(record, context.RequestId);
        }
        else if (accounts is not null)
        {
            // Revenue under the tenant's plan, from its running month (docs/economics.md, "Revenue per request").
            context.RevenueUsd = accounts.Price(record);
            record = record with { RevenueUsd = context.RevenueUsd };
        }
        if (ledger is null || record.Id.Length == 0)
        {
            return;
        }
        try
        {
            // Never cancelled: the tokens are spent whether or not the client is still there.
            var stored = await ledger.RecordAsync(record);
            context.Billed = stored && !repeat;
            if (!stored && context.Attempts.Count > 0)
            {
                // The id was taken while this request ran (the same key sent concurrently with replay off, or on two
                // nodes at once): the model was still called, so the call is recorded beside the request that holds it.
                await ledger.RecordAsync(Repeated(record, context.RequestId));
            }
        }
        catch (Exception error) when (error is not GatewayException)
        {
            throw new GatewayException(GatewayErrorKind.UpstreamUnavailable,
                "The usage ledger could not record this request, so it was not completed. Retry with the same Idempotency-Key.",
                code: "ledger_unavailable", innerException: error);
        }
    }

    /// <summary>An id of its own for a record that must not take the request's id: <c>{id}~{why}~{unique}</c>.</summary>
    private static string OwnId(string requestId, string why) => $"{requestId}~{why}~{Guid.CreateVersion7():N}";

    /// <summary>
    /// A successful call made again for a request the ledger already holds (same Idempotency-Key, same body, answer
    /// no longer kept for replay): an adjustment of that request with this call's tokens, cost and attempts and no
    /// revenue, so the call is on the books (cost, reports) while the client is billed once.
    /// </summary>
    internal static UsageRecord Repeated(UsageRecord record, string requestId) => record with
    {
        Id = OwnId(requestId, "repeat"),
        Kind = UsageRecordKinds.Adjustment,
        Adjusts = requestId,
        RevenueUsd = null,
        Tags = record.Tags.Length == 0 ? InvoiceBuilder.RepeatReason : record.Tags + "," + InvoiceBuilder.RepeatReason,
    };

    /// <summary>
    /// Without a price-book entry only an owned provider's capacity is known for sure (a local model is owned); an
    /// unpriced remote model may be API or rented, so it stays unknown.
    /// </summary>
    private CapacityKind? ServedCapacity(GatewayContext context) =>
        context.Provider is { } provider && models.Current.Providers.TryGetValue(provider, out var upstream) && upstream.Capacity == CapacityKind.Owned
            ? CapacityKind.Owned
            : null;

    private static (TokenUsage Usage, string Source) Usage(GatewayContext context, CatalogEntry? catalog, IEnumerable<ChatMessage> messages, string? unreportedOutput, string status)
    {
        if (!AnswerPricing.IsReported(context.Usage) && (context.ServedModel is null || (status != "ok" && string.IsNullOrEmpty(unreportedOutput))))
        {
            // No upstream produced anything: nothing was spent.
            return (new TokenUsage(0), "none");
        }
        return (AnswerPricing.Tokens(context.Usage, catalog?.TokenizerEncoding, messages, unreportedOutput), AnswerPricing.IsReported(context.Usage) ? "reported" : "counted");
    }

    /// <summary>The clock of one request: when it arrived, how long it took, when its first token came.</summary>
    private sealed class Meter(GatewayContext context, TimeProvider time)
    {
        private readonly long _started = time.GetTimestamp();

        public GatewayContext Context { get; } = context;

        public DateTimeOffset Arrived { get; } = time.GetUtcNow();

        public double? TimeToFirstTokenMs { get; private set; }

        public void FirstToken() => TimeToFirstTokenMs ??= ElapsedMs();

        public double ElapsedMs() => time.GetElapsedTime(_started).TotalMilliseconds;
    }
}

public static class MeteringChatClientBuilderExtensions
{
    /// <summary>Adds metering; <paramref name="ledger"/> null prices requests without recording them; <paramref name="accounts"/> null records no revenue.</summary>
    public static ChatClientBuilder UseMetering(this ChatClientBuilder builder, GatewayModelSource models, LedgerWriter? ledger, TimeProvider time, TenantAccounts? accounts = null) =>
        builder.Use(inner => new MeteringChatClient(inner, models, ledger, time, accounts));
}
