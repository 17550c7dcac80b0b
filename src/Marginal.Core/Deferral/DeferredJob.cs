namespace Marginal.Core.Deferral;

/// <summary>
/// One deferred chat completion: what was asked, by whom, by when, and how it ended. <see cref="Status"/> moves
/// <c>queued → running → completed | failed | expired</c> and never back (a job found <c>running</c> without a batch
/// after a restart is run again; its ledger record is keyed by <see cref="RequestId"/>, so it is billed once).
/// </summary>
/// <param name="Id">The public id, <c>job_…</c>.</param>
/// <param name="RequestId">The ledger id of the request: its one usage record has this id.</param>
/// <param name="Tenant">The tenant that submitted it; only this tenant can read it.</param>
/// <param name="KeyId">The virtual key it came with (<c>none</c> without keys).</param>
/// <param name="Model">The configured model the client named.</param>
/// <param name="Status">One of <see cref="JobStatus"/>.</param>
/// <param name="Created">When the gateway accepted it.</param>
/// <param name="Deadline">When the answer stops being useful: a job still unanswered then is expired.</param>
/// <param name="RequestJson">The client's chat completion body, as sent.</param>
/// <param name="BatchId">The provider's batch that carries it, once submitted to a batch API.</param>
/// <param name="ResultJson">The chat completion body, once completed.</param>
/// <param name="ErrorJson">The OpenAI error object (<c>{"message","type","param","code"}</c>), once failed or expired.</param>
/// <param name="Finished">When it reached a final status.</param>
public sealed record DeferredJob(
    string Id,
    string RequestId,
    string Tenant,
    string KeyId,
    string Model,
    string Status,
    DateTimeOffset Created,
    DateTimeOffset Deadline,
    string RequestJson,
    string? BatchId = null,
    string? ResultJson = null,
    string? ErrorJson = null,
    DateTimeOffset? Finished = null)
{
    public bool IsFinal => Status is JobStatus.Completed or JobStatus.Failed or JobStatus.Expired;
}

/// <summary>The states of a <see cref="DeferredJob"/>, as the jobs API spells them.</summary>
public static class JobStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Expired = "expired";
}

/// <summary>
/// Durable storage of <see cref="DeferredJob"/>s. Thread-safe. A job written by <see cref="SaveAsync"/> is on disk when
/// the task completes, so an accepted job survives a restart.
/// </summary>
public interface IJobStore
{
    /// <summary>Inserts <paramref name="job"/>, or replaces the stored job with the same id.</summary>
    Task SaveAsync(DeferredJob job, CancellationToken cancellationToken = default);

    /// <summary>The job with <paramref name="id"/>, or null.</summary>
    Task<DeferredJob?> FindJobAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Every job that is not final (queued or running), oldest first.</summary>
    Task<IReadOnlyList<DeferredJob>> ReadActiveJobsAsync(CancellationToken cancellationToken = default);
}
