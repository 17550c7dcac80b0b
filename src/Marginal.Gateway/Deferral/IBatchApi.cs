using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Deferral;

/// <summary>
/// Turns an OpenAI chat request body into the pipeline's messages and options, as the server does for a live request
/// (the host owns the wire format). Throws <see cref="Marginal.Core.Errors.GatewayException"/> for a malformed request.
/// </summary>
public delegate (IList<ChatMessage> Messages, ChatOptions Options) ChatRequestTranslator(JsonObject request);

/// <summary>
/// A provider's batch API, seen in OpenAI's Batch API shapes so <see cref="DeferralQueue"/> settles every provider the
/// same way: input lines <c>{"custom_id","method","url","body": chat request}</c>; a batch object with <c>status</c>
/// (<c>validating</c>, <c>in_progress</c>, <c>finalizing</c>, <c>cancelling</c>, <c>completed</c>, <c>failed</c>,
/// <c>expired</c>, <c>cancelled</c>) and <c>errors</c>; result lines <c>{"custom_id","response":{"status_code","body":
/// chat.completion},"error"}</c>. Implementations translate their own wire format. Thread-safe; the queue disposes it.
/// </summary>
public interface IBatchApi : IDisposable
{
    /// <summary>
    /// The body this API sends for <paramref name="chatRequest"/> (the <c>body</c> of its input line): the chat request
    /// itself, or its translation into the provider's request format. Throws a
    /// <see cref="Marginal.Core.Errors.GatewayException"/> when this API cannot carry the request.
    /// </summary>
    Task<JsonObject> PrepareAsync(JsonObject chatRequest, CancellationToken cancellationToken);

    /// <summary>Sends the JSONL <paramref name="jsonl"/> (lines with prepared bodies) as one batch; returns the provider's batch id.</summary>
    Task<string> SubmitAsync(string jsonl, CancellationToken cancellationToken);

    /// <summary>The batch object.</summary>
    Task<JsonObject> GetAsync(string batchId, CancellationToken cancellationToken);

    /// <summary>Every result line of a finished batch (answers and failures); lines never processed are absent.</summary>
    Task<IReadOnlyList<JsonNode>> ReadResultsAsync(JsonObject batch, CancellationToken cancellationToken);

    /// <summary>Asks the provider to stop the batch; requests already done are still billed by it.</summary>
    Task CancelAsync(string batchId, CancellationToken cancellationToken);
}
