using Marginal.Core.Caching;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Marginal.Core.Errors;
using Marginal.Core.Ledger;
using Marginal.Core.Requests;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Model;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Idempotency;

/// <summary>
/// Outermost middleware: a request that carries an <c>Idempotency-Key</c> (<see cref="GatewayContext.IdempotencyKeyGiven"/>)
/// has its finished answer kept in an <see cref="IResponseCacheStore"/> under its ledger id for <c>idempotency.ttl</c>,
/// whatever the exact cache or the temperature says, and a retry gets that answer back (a stream as a stream) without
/// calling a model or writing a ledger record (<see cref="GatewayContext.Replayed"/>, <see cref="GatewayContext.Billed"/>
/// false). Only finished answers are kept: an error, a broken or abandoned stream frees the key and the retry goes
/// upstream again. The same key with another request body (model, messages, output-changing options, JSON or stream)
/// is refused with 422 <c>idempotency_key_reuse</c>; the same key while its first request is still being answered with
/// 409 <c>idempotency_key_in_use</c>, as the IETF draft "The Idempotency-Key HTTP Header Field" asks.
/// </summary>
/// <remarks>
/// Within one node the in-flight check is exact (a concurrent dictionary). Across nodes sharing the store it is a
/// marker entry written before the request goes upstream; the store has no set-if-absent, so two nodes that receive
/// the same key within one store round trip may both call the model (the ledger still bills the key once). Marker
/// properties are read back whether the store keeps them as strings or serialises them to JSON (Redis); a store that
/// loses <see cref="ChatResponse.AdditionalProperties"/> makes every entry read as unknown: retries then go upstream,
/// never replay the wrong answer.
/// <para>
/// The replay store forgets (a restart, an eviction, the ttl, <c>idempotency.replay: false</c>); the ledger does not. So
/// when the store holds nothing for a key, the ledger record that holds the key's id is read: a record of another body
/// (<see cref="UsageRecord.RequestHash"/>) is 422 as above, and a record of the same body means the answer is gone: the
/// request goes upstream again and that call is recorded as an adjustment of the key's record (cost, tokens, no revenue:
/// <see cref="GatewayContext.AnswerGone"/>), never dropped as a duplicate. Every upstream call made for a client request
/// thus ends in a ledger record, and the key is still billed once.
/// </para>
/// </remarks>
public sealed class IdempotentReplayChatClient(IChatClient innerClient, GatewayModelSource models, IResponseCacheStore store, TimeProvider time, ILedgerStore? ledger = null) : DelegatingChatClient(innerClient)
{
    /// <summary>Where the stored entry says which request body it belongs to.</summary>
    public const string FingerprintProperty = "marginal.idempotency.fingerprint";

    /// <summary>Where a marker entry says it holds no answer: <see cref="InFlight"/> or <see cref="Released"/>.</summary>
    public const string StateProperty = "marginal.idempotency.state";

    /// <summary>Where an in-flight marker says when it lapses unless renewed (Unix milliseconds).</summary>
    public const string UntilProperty = "marginal.idempotency.until";

    private const string InFlight = "in_flight";
    private const string Released = "released";

    // Keys being answered on this node, with the fingerprint of the body that holds them.
    private readonly ConcurrentDictionary<string, string> _inFlight = new(StringComparer.Ordinal);

    // The renewal of each in-flight marker this node wrote, stopped before the key's answer or release is stored.
    private readonly ConcurrentDictionary<string, (CancellationTokenSource Stop, Task Loop)> _renewals = new(StringComparer.Ordinal);

    internal IChatClient Inner => InnerClient;

    /// <summary>Where a request's answer is kept: its ledger id, apart from the exact cache's hashed keys.</summary>
    public static string StoreKey(string requestId) => "idempotency/" + requestId;

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (Keyed(options) is not { } context)
        {
            return await base.GetResponseAsync(messages, options, cancellationToken);
        }
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var fingerprint = Fingerprint(context, list, options!, "json");
        if (!Replaying)
        {
            await CheckLedgerAsync(context, cancellationToken);
            return await base.GetResponseAsync(list, options, cancellationToken);
        }
        var key = StoreKey(context.RequestId);
        if (await BeginAsync(context, key, fingerprint, cancellationToken) is { } stored)
        {
            Replay(context, stored);
            return stored.Response;
        }
        var kept = false;
        try
        {
            var response = Stamped(await base.GetResponseAsync(list, options, cancellationToken), fingerprint);
            await StopRenewingAsync(key);
            await store.SetAsync(key, new CachedAnswer(response, null, context.ServedModel, context.Provider, context.CostUsd), Ttl, CancellationToken.None);
            kept = true;
            return response;
        }
        finally
        {
            await EndAsync(key, fingerprint, kept);
        }
    }

    /// <summary>A request without an Idempotency-Key gets the inner stream itself: no extra step per update.</summary>
    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        Keyed(options) is { } context
            ? KeyedStreamAsync(context, messages, options, cancellationToken)
            : base.GetStreamingResponseAsync(messages, options, cancellationToken);

    private async IAsyncEnumerable<ChatResponseUpdate> KeyedStreamAsync(GatewayContext context, IEnumerable<ChatMessage> messages, ChatOptions? options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var fingerprint = Fingerprint(context, list, options!, context.IncludeStreamUsage ? "stream+usage" : "stream");
        if (!Replaying)
        {
            await CheckLedgerAsync(context, cancellationToken);
            await foreach (var update in base.GetStreamingResponseAsync(list, options, cancellationToken))
            {
                yield return update;
            }
            yield break;
        }
        var key = StoreKey(context.RequestId);
        if (await BeginAsync(context, key, fingerprint, cancellationToken) is { } stored)
        {
            Replay(context, stored);
            foreach (var update in stored.Updates ?? stored.Response.ToChatResponseUpdates())
            {
                yield return update;
            }
            yield break;
        }
        var updates = new List<ChatResponseUpdate>();
        var kept = false;
        try
        {
            await foreach (var update in base.GetStreamingResponseAsync(list, options, cancellationToken))
            {
                // The first update names the stream (id, time); a replay must name it the same way.
                var current = updates.Count == 0 ? Stamped(update) : update;
                updates.Add(current);
                yield return current;
            }
            // Reached only when the stream ended normally: an error or an abandoned stream leaves before this line.
            var response = updates.ToChatResponse();
            (response.AdditionalProperties ??= [])[FingerprintProperty] = fingerprint;
            await StopRenewingAsync(key);
            await store.SetAsync(key, new CachedAnswer(response, updates, context.ServedModel, context.Provider, context.CostUsd), Ttl, CancellationToken.None);
            kept = true;
        }
        finally
        {
            await EndAsync(key, fingerprint, kept);
        }
    }

    private static GatewayContext? Keyed(ChatOptions? options) =>
        options.GetGatewayContext() is { IdempotencyKeyGiven: true, RequestId.Length: > 0 } context ? context : null;

    private bool Replaying => models.Current.Config.Idempotency.Replay;

    /// <summary>
    /// Which body holds the key: the exact cache's hash of model, messages and output-changing options, then how the
    /// answer was asked for (<paramref name="mode"/>). Also set as the context's <see cref="GatewayContext.RequestHash"/>,
    /// which the ledger keeps without the tenant (the record has its own).
    /// </summary>
    private static string Fingerprint(GatewayContext context, IReadOnlyList<ChatMessage> messages, ChatOptions options, string mode)
    {
        var hash = ResponseCacheKey.Body(messages, options) + ":" + mode;
        context.RequestHash = hash;
        return context.Tenant + ":" + hash;
    }

    /// <summary>
    /// The replay store holds nothing for the key: the ledger decides. A record of another body is 422; a record of the
    /// same body means its answer is gone, so this call is recorded beside it.
    /// </summary>
    private async Task CheckLedgerAsync(GatewayContext context, CancellationToken cancellationToken) =>
        context.AnswerGone = await IdempotencyLedger.HeldAsync(ledger, context.RequestId, context.RequestHash!, cancellationToken);

    private TimeSpan Ttl => models.Current.Config.Idempotency.TtlSpan;

    /// <summary>
    /// Claims <paramref name="key"/> for this request, or returns the stored answer to replay. Throws 409 while another
    /// request holds the key and 422 when the key belongs to another body.
    /// </summary>
    private async Task<CachedAnswer?> BeginAsync(GatewayContext context, string key, string fingerprint, CancellationToken cancellationToken)
    {
        if (!_inFlight.TryAdd(key, fingerprint))
        {
            throw Refusal(_inFlight.TryGetValue(key, out var holder) ? holder : fingerprint, fingerprint);
        }
        try
        {
            var found = await store.GetAsync(key, cancellationToken);
            var state = found is null ? null : Property(found.Response, StateProperty);
            var owner = found is null ? null : Property(found.Response, FingerprintProperty);
            if (owner is not null && state != Released)
            {
                if (owner != fingerprint || state == InFlight)
                {
                    throw Refusal(owner, fingerprint, RemainingOf(found!.Response));
                }
                _inFlight.TryRemove(key, out _);
                return found;
            }
            // Absent, released after a failure, or unreadable: this request answers, and holds the key meanwhile. The
            // marker is short-lived and renewed while the request runs, so a node that dies frees the key soon after.
            await CheckLedgerAsync(context, cancellationToken);
            var lease = models.Current.Config.Idempotency.InFlightTtlSpan;
            await store.SetAsync(key, InFlightMarker(fingerprint, lease), lease, cancellationToken);
            var stop = new CancellationTokenSource();
            _renewals[key] = (stop, RenewAsync(key, fingerprint, lease, stop.Token));
            return null;
        }
        catch
        {
            _inFlight.TryRemove(key, out _);
            throw;
        }
    }

    /// <summary>Frees the key; a request that ended without an answer also clears its marker so a retry goes upstream.</summary>
    private async Task EndAsync(string key, string fingerprint, bool kept)
    {
        try
        {
            await StopRenewingAsync(key);
            if (!kept)
            {
                // The store has no delete: a short-lived "released" marker reads as absent.
                await store.SetAsync(key, Marker(Released, fingerprint), TimeSpan.FromSeconds(1), CancellationToken.None);
            }
        }
        finally
        {
            _inFlight.TryRemove(key, out _);
        }
    }

    /// <summary>Writes the in-flight marker again every third of its lease until stopped.</summary>
    private async Task RenewAsync(string key, string fingerprint, TimeSpan lease, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                await Task.Delay(lease / 3, time, stop);
                // Not cancelled midway: a renewal still on its way could land after the answer and hide it.
                await store.SetAsync(key, InFlightMarker(fingerprint, lease), lease, CancellationToken.None);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Ends the renewal of <paramref name="key"/>'s marker; returns once no renewal write can follow.</summary>
    private async Task StopRenewingAsync(string key)
    {
        if (_renewals.TryRemove(key, out var renewal))
        {
            await renewal.Stop.CancelAsync();
            try
            {
                await renewal.Loop;
            }
            catch (Exception error) when (error is not OperationCanceledException)
            {
                // A renewal that failed (store unreachable) leaves the marker to lapse; the answer is stored next.
            }
            renewal.Stop.Dispose();
        }
    }

    private CachedAnswer InFlightMarker(string fingerprint, TimeSpan lease)
    {
        var marker = Marker(InFlight, fingerprint);
        marker.Response.AdditionalProperties![UntilProperty] = (time.GetUtcNow() + lease).ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        return marker;
    }

    /// <summary>How long an in-flight marker has left: when a retry may find the key free (its node died) or answered.</summary>
    private TimeSpan RemainingOf(ChatResponse marker) =>
        long.TryParse(Property(marker, UntilProperty), System.Globalization.CultureInfo.InvariantCulture, out var until)
            ? TimeSpan.FromMilliseconds(Math.Max(until - time.GetUtcNow().ToUnixTimeMilliseconds(), 0))
            : models.Current.Config.Idempotency.InFlightTtlSpan;

    /// <summary>422 when the key belongs to another body, else 409: the same request is still being answered.</summary>
    private GatewayException Refusal(string owner, string fingerprint, TimeSpan? remaining = null) => owner != fingerprint
        ? IdempotencyLedger.KeyReused()
        : new GatewayException(GatewayErrorKind.Conflict,
            "A request with this Idempotency-Key is still being answered. Retry after it has finished to receive its answer.",
            "idempotency_key_in_use", "Idempotency-Key") { RetryAfter = remaining ?? models.Current.Config.Idempotency.InFlightTtlSpan };

    private static void Replay(GatewayContext context, CachedAnswer answer)
    {
        context.Replayed = true;
        // The ledger already holds this key's record: nothing is billed, counted against a budget or recorded again.
        context.Billed = false;
        context.ServedModel = answer.ServedModel;
        context.Provider = answer.Provider;
        context.CostUsd = answer.CostUsd;
        context.Usage = answer.Response.Usage;
    }

    /// <summary>A marker property, as written here or as a serialising store (Redis) reads it back: a JSON string.</summary>
    private static string? Property(ChatResponse response, string name) =>
        response.AdditionalProperties is { } properties && properties.TryGetValue(name, out var value)
            ? value switch
            {
                string text => text,
                System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.String } json => json.GetString(),
                _ => null,
            }
            : null;

    private static CachedAnswer Marker(string state, string fingerprint) =>
        new(new ChatResponse { AdditionalProperties = new() { [StateProperty] = state, [FingerprintProperty] = fingerprint } }, null, null, null, null);

    /// <summary>
    /// A copy of <paramref name="response"/> carrying <paramref name="fingerprint"/>, with an id and a creation time of its
    /// own when the upstream gave none, so the replay's body is the first answer's byte for byte. A copy, because the
    /// exact cache may hand the same response object to other requests.
    /// </summary>
    private ChatResponse Stamped(ChatResponse response, string fingerprint)
    {
        var properties = response.AdditionalProperties is { } existing ? new AdditionalPropertiesDictionary(existing) : [];
        properties[FingerprintProperty] = fingerprint;
        return new ChatResponse(response.Messages)
        {
            ResponseId = response.ResponseId ?? NewId(),
            ConversationId = response.ConversationId,
            ModelId = response.ModelId,
            CreatedAt = response.CreatedAt ?? time.GetUtcNow(),
            FinishReason = response.FinishReason,
            Usage = response.Usage,
            RawRepresentation = response.RawRepresentation,
            AdditionalProperties = properties,
        };
    }

    private ChatResponseUpdate Stamped(ChatResponseUpdate update)
    {
        if (update.ResponseId is { Length: > 0 } && update.CreatedAt is not null)
        {
            return update;
        }
        var copy = update.Clone();
        copy.ResponseId ??= NewId();
        copy.CreatedAt ??= time.GetUtcNow();
        return copy;
    }

    private static string NewId() => "chatcmpl-" + Guid.NewGuid().ToString("N");
}

public static class IdempotentReplayChatClientBuilderExtensions
{
    /// <summary>
    /// Adds idempotent replay over <paramref name="store"/> (answers kept under <c>idempotency/{ledger id}</c>);
    /// <paramref name="ledger"/>, when given, is read for keys the store no longer holds.
    /// </summary>
    public static ChatClientBuilder UseIdempotentReplay(this ChatClientBuilder builder, GatewayModelSource models, IResponseCacheStore store, TimeProvider time, ILedgerStore? ledger = null) =>
        builder.Use(inner => new IdempotentReplayChatClient(inner, models, store, time, ledger));
}
