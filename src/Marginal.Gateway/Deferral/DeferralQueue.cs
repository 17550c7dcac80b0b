using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Marginal.Core.Deferral;
using Marginal.Core.Errors;
using Marginal.Core.Ledger;
using Marginal.Core.Pricing;
using Marginal.Core.Requests;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Model;
using Marginal.Gateway.Providers.OpenAI;
using Marginal.Gateway.Wire.OpenAI;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace Marginal.Gateway.Deferral;

/// <summary>
/// Moves deferred jobs through their lifecycle, one <see cref="TickAsync"/> at a time (the host calls it every
/// <c>deferral.flush_interval</c>; ticks never overlap). Each tick:
/// <list type="number">
/// <item>polls every provider batch that carries running jobs; a finished batch completes or fails each of its jobs
/// from the output and error files (matched by <c>custom_id</c> = job id) and writes each job's one ledger record,
/// priced with the batch multiplier and the <c>deferral</c> lever's saving;</item>
/// <item>expires jobs whose deadline has passed (a batch whose jobs have all expired is cancelled);</item>
/// <item>sends queued jobs for a model served by a batch provider as one batch per provider, at most
/// <c>flush_size</c> each;</item>
/// <item>runs queued jobs of other models through the chat pipeline (<see cref="RunDirectAsync"/>), which meters them
/// itself: the stored body read with the live request's reader, the answer kept as the <c>chat.completion</c> body the
/// live endpoint would have written.</item>
/// </list>
/// State lives in the <see cref="IJobStore"/> only, so a restart loses nothing: the next tick picks up where the last left.
/// </summary>
public sealed partial class DeferralQueue(
    IJobStore store,
    GatewayModelSource models,
    LedgerWriter? ledger,
    TimeProvider time,
    IChatClient pipeline,
    ILogger<DeferralQueue> logger,
    TenantAccounts? accounts = null) : IDisposable
{
    public const string Lever = "deferral";

    private readonly Dictionary<string, IBatchApi> _batchApis = new(StringComparer.Ordinal);

    public async Task TickAsync(CancellationToken cancellationToken)
    {
        var snapshot = models.Current;
        var deferral = snapshot.Config.Deferral;
        var active = await store.ReadActiveJobsAsync(cancellationToken);
        foreach (var batch in active.Where(j => j is { Status: JobStatus.Running, BatchId: not null }).GroupBy(j => j.BatchId!))
        {
            try
            {
                await PollAsync(snapshot, batch.Key, [.. batch], cancellationToken);
            }
            catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The provider is unreachable or refused the poll: the jobs stay running and the next tick asks again.
                LogPollFailed(logger, batch.Key, error.Message);
            }
        }
        var now = time.GetUtcNow();
        var batched = new Dictionary<string, List<(DeferredJob Job, ModelDeployment Deployment)>>(StringComparer.Ordinal);
        var directCount = 0;
        // A running job without a batch was being run directly when the process stopped: it runs again (billed once,
        // its record is keyed by the request id).
        foreach (var job in active.Where(j => j.Status == JobStatus.Queued || j is { Status: JobStatus.Running, BatchId: null }))
        {
            if (job.Deadline <= now)
            {
                await FinishAsync(job, JobStatus.Expired, null, ExpiredError(job), cancellationToken);
                continue;
            }
            if (!snapshot.Models.TryGetValue(job.Model, out var route))
            {
                await FinishAsync(job, JobStatus.Failed, null, Error($"The model '{job.Model}' is no longer configured.", "invalid_request_error", "model_not_found"), cancellationToken);
                continue;
            }
            var provider = route.Primary.Provider.Name;
            if (deferral.BatchProviders.Contains(provider))
            {
                if (!batched.TryGetValue(provider, out var list))
                {
                    batched[provider] = list = [];
                }
                if (list.Count < deferral.FlushSize)
                {
                    list.Add((job, route.Primary));
                }
            }
            else if (directCount++ < deferral.FlushSize)
            {
                await RunDirectAsync(job, cancellationToken);
            }
        }
        foreach (var (provider, jobs) in batched)
        {
            try
            {
                await SubmitAsync(snapshot, provider, jobs, cancellationToken);
            }
            catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Left queued: the next tick tries again, until the deadline expires them.
                LogSubmitFailed(logger, provider, jobs.Count, error.Message);
            }
        }
    }

    /// <summary>Runs a job through the chat pipeline (models without a batch provider), metered under the job's request id.</summary>
    private async Task RunDirectAsync(DeferredJob job, CancellationToken cancellationToken)
    {
        await store.SaveAsync(job with { Status = JobStatus.Running }, cancellationToken);
        string result;
        try
        {
            var request = ChatRequestReader.Read(JsonNode.Parse(job.RequestJson)!);
            var (messages, options) = ChatRequestReader.ToChat(request);
            var context = new GatewayContext
            {
                RequestId = job.RequestId,
                Tenant = job.Tenant,
                KeyId = job.KeyId,
                RequestedModel = request.Model,
                EndUser = request.User,
                Metadata = request.Metadata,
                Deferred = true,
            };
            context.Tags.Add("deferred");
            var response = await pipeline.GetResponseAsync(messages, options.WithGatewayContext(context), cancellationToken);
            var output = new ArrayBufferWriter<byte>();
            ChatResponseWriter.WriteCompletion(output, response, request.Model!, time);
            result = Encoding.UTF8.GetString(output.WrittenSpan);
        }
        catch (GatewayException error)
        {
            await FinishAsync(job, JobStatus.Failed, null, Error(error.Message, OpenAIErrorJson.TypeOf(error.Kind), error.Code), cancellationToken);
            return;
        }
        await FinishAsync(job, JobStatus.Completed, result, null, cancellationToken);
    }

    /// <summary>
    /// A stored chat request read as a live one (<see cref="ChatRequestTranslator"/>), for batch APIs that translate it
    /// the way their live provider does; the context names the end user, which Anthropic sends as <c>metadata.user_id</c>.
    /// </summary>
    public static (IList<ChatMessage> Messages, ChatOptions Options) ReadChat(JsonObject body)
    {
        var request = ChatRequestReader.Read(body);
        var (messages, options) = ChatRequestReader.ToChat(request);
        options.WithGatewayContext(new GatewayContext { RequestedModel = request.Model, EndUser = request.User, Metadata = request.Metadata });
        return (messages, options);
    }

    private async Task SubmitAsync(GatewayModel snapshot, string provider, List<(DeferredJob Job, ModelDeployment Deployment)> jobs, CancellationToken cancellationToken)
    {
        var api = ApiOf(snapshot, provider);
        var jsonl = new StringBuilder();
        var sent = new List<DeferredJob>();
        foreach (var (job, deployment) in jobs)
        {
            var body = JsonNode.Parse(job.RequestJson)!.AsObject();
            body["model"] = deployment.UpstreamId;
            body.Remove("stream");
            body.Remove("stream_options");
            JsonObject prepared;
            try
            {
                prepared = await api.PrepareAsync(body, cancellationToken);
            }
            catch (GatewayException refused)
            {
                // This provider's batch API cannot carry the request: its job fails alone, the others go.
                await FinishAsync(job, JobStatus.Failed, null, Error(refused.Message, "invalid_request_error", refused.Code), cancellationToken);
                continue;
            }
            var line = new JsonObject { ["custom_id"] = job.Id, ["method"] = "POST", ["url"] = "/v1/chat/completions", ["body"] = prepared };
            jsonl.Append(line.ToJsonString()).Append('\n');
            sent.Add(job);
        }
        if (sent.Count == 0)
        {
            return;
        }
        var batchId = $"{provider}/{await api.SubmitAsync(jsonl.ToString(), cancellationToken)}";
        foreach (var job in sent)
        {
            await store.SaveAsync(job with { Status = JobStatus.Running, BatchId = batchId }, cancellationToken);
        }
        LogSubmitted(logger, batchId, sent.Count);
    }

    private async Task PollAsync(GatewayModel snapshot, string batchKey, List<DeferredJob> jobs, CancellationToken cancellationToken)
    {
        var slash = batchKey.IndexOf('/', StringComparison.Ordinal);
        var (provider, batchId) = (batchKey[..slash], batchKey[(slash + 1)..]);
        if (!snapshot.Providers.ContainsKey(provider) || !snapshot.Config.Providers.ContainsKey(provider))
        {
            foreach (var job in jobs)
            {
                await FinishAsync(job, JobStatus.Failed, null, Error($"The provider '{provider}' that ran this job's batch is no longer configured.", "server_error", "provider_not_configured"), cancellationToken);
            }
            return;
        }
        var api = ApiOf(snapshot, provider);
        var batch = await api.GetAsync(batchId, cancellationToken);
        var status = batch["status"]?.GetValue<string>();
        switch (status)
        {
            case "completed" or "expired" or "cancelled":
                await SettleAsync(snapshot, api, batch, jobs, cancellationToken);
                return;
            case "failed":
                var message = batch["errors"]?["data"]?[0]?["message"]?.GetValue<string>() ?? "The provider rejected the batch.";
                foreach (var job in jobs)
                {
                    await FinishAsync(job, JobStatus.Failed, null, Error(message, "server_error", "batch_failed"), cancellationToken);
                }
                return;
        }
        var now = time.GetUtcNow();
        var expired = 0;
        foreach (var job in jobs.Where(j => j.Deadline <= now))
        {
            await FinishAsync(job, JobStatus.Expired, null, ExpiredError(job), cancellationToken);
            expired++;
        }
        if (expired == jobs.Count && status is not "cancelling")
        {
            // Nobody waits for these answers any more; the provider bills only what it has already done.
            await api.CancelAsync(batchId, cancellationToken);
        }
    }

    /// <summary>Reads the output and error files of a finished batch and settles each job from its line.</summary>
    private async Task SettleAsync(GatewayModel snapshot, IBatchApi api, JsonObject batch, List<DeferredJob> jobs, CancellationToken cancellationToken)
    {
        var lines = new Dictionary<string, JsonNode>(StringComparer.Ordinal);
        foreach (var line in await api.ReadResultsAsync(batch, cancellationToken))
        {
            if (line["custom_id"]?.GetValue<string>() is { } customId)
            {
                lines[customId] = line;
            }
        }
        var batchStatus = batch["status"]!.GetValue<string>();
        foreach (var job in jobs)
        {
            if (!lines.TryGetValue(job.Id, out var line))
            {
                // The batch ended (expired at the provider, was cancelled, or left the line out) without answering this
                // job. While its deadline allows, it goes in the next batch; after, it expires saying what happened.
                if (job.Deadline > time.GetUtcNow())
                {
                    await store.SaveAsync(job with { Status = JobStatus.Queued, BatchId = null }, cancellationToken);
                    LogResent(logger, job.Id, job.BatchId ?? "", batchStatus);
                    continue;
                }
                await FinishAsync(job, JobStatus.Expired, null, Error(
                    $"The provider's batch ended ({batchStatus}) without answering this job, and its deadline ({job.Deadline:O}) has passed.",
                    "invalid_request_error", "deadline_exceeded"), cancellationToken);
                continue;
            }
            var response = line["response"];
            var statusCode = response?["status_code"]?.GetValue<int>() ?? 0;
            if (statusCode is >= 200 and < 300 && response?["body"] is JsonObject body)
            {
                await RecordAsync(snapshot, job, body, cancellationToken);
                await FinishAsync(job, JobStatus.Completed, body.ToJsonString(), null, cancellationToken);
                continue;
            }
            var error = response?["body"]?["error"] ?? line["error"];
            var message = error?["message"]?.GetValue<string>() ?? $"The provider's batch ({batchStatus}) returned no answer for this request.";
            var code = error?["code"]?.GetValue<string>() ?? "batch_request_failed";
            var failure = Error(message, statusCode is >= 400 and < 500 ? "invalid_request_error" : "server_error", code);
            await RecordFailureAsync(job, code, cancellationToken);
            await FinishAsync(job, JobStatus.Failed, null, failure, cancellationToken);
        }
    }

    /// <summary>
    /// The job's one ledger record, keyed by its request id: the batch price, and the <c>deferral</c> lever's saving =
    /// the same tokens at the model's normal price − the batch price (docs/economics.md, "Deferral").
    /// </summary>
    private async Task RecordAsync(GatewayModel snapshot, DeferredJob job, JsonObject body, CancellationToken cancellationToken)
    {
        var deployment = snapshot.Models[job.Model].Primary;
        var usage = body["usage"] as JsonObject;
        var tokens = TokenUsage.FromUsageDetails(UsageOf(usage), batched: true);
        decimal? cost = null;
        decimal? saving = null;
        if (deployment.Catalog is { } catalog)
        {
            cost = CostCalculator.Cost(tokens, catalog.Price);
            saving = CostCalculator.Cost(tokens with { Batched = false }, catalog.Price) - cost;
        }
        var now = time.GetUtcNow();
        await AppendAsync(new UsageRecord(
            Id: job.RequestId, Time: now, Tenant: job.Tenant, KeyId: job.KeyId, RequestedModel: job.Model, ServedModel: job.Model,
            Provider: deployment.Provider.Name, CapacitySource: deployment.Catalog?.Capacity.Name(), Status: "ok", Streamed: false,
            InputTokens: tokens.InputTokens, CachedInputTokens: tokens.CachedInputTokens, CacheWriteTokens: tokens.CacheWrite5mTokens,
            OutputTokens: tokens.OutputTokens, ReasoningTokens: tokens.ReasoningTokens, UsageSource: usage is null ? "none" : "reported",
            LatencyMs: (now - job.Created).TotalMilliseconds, TimeToFirstTokenMs: null, CostUsd: cost, MarginalCostUsd: cost, RevenueUsd: null,
            CacheOutcome: null, RouteReason: "deferred", Levers: saving is { } s ? LeverSavings.Format([new(Lever, s)]) : "",
            SavingsUsd: saving, Attempts: 1, Tags: "deferred"), cancellationToken);
    }

    /// <summary>
    /// An answer's usage read by the one parser of OpenAI usage (<see cref="OpenAIChatStream.UsageOf"/>, the live
    /// stream's), plus Anthropic's cache writes, which <see cref="AnthropicBatchApi"/> carries over in a field of their own.
    /// </summary>
    private static UsageDetails? UsageOf(JsonObject? usage)
    {
        if (usage is null)
        {
            return null;
        }
        var details = OpenAIChatStream.UsageOf(JsonSerializer.SerializeToElement(usage));
        if (usage[AnthropicBatchApi.CacheWriteTokensField] is JsonValue written && written.TryGetValue<long>(out var writes))
        {
            (details.AdditionalCounts ??= [])[TokenUsage.CacheWriteTokensKey] = writes;
        }
        return details;
    }

    /// <summary>A failed batch line costs nothing (the provider bills only successful requests) but is recorded once, like any failure.</summary>
    private Task RecordFailureAsync(DeferredJob job, string code, CancellationToken cancellationToken) =>
        AppendAsync(new UsageRecord(
            Id: job.RequestId, Time: time.GetUtcNow(), Tenant: job.Tenant, KeyId: job.KeyId, RequestedModel: job.Model, ServedModel: job.Model,
            Provider: models.Current.Models.TryGetValue(job.Model, out var route) ? route.Primary.Provider.Name : null, CapacitySource: null,
            Status: code, Streamed: false, InputTokens: 0, CachedInputTokens: 0, CacheWriteTokens: 0, OutputTokens: 0, ReasoningTokens: 0,
            UsageSource: "none", LatencyMs: (time.GetUtcNow() - job.Created).TotalMilliseconds, TimeToFirstTokenMs: null, CostUsd: 0m,
            MarginalCostUsd: 0m, RevenueUsd: null, CacheOutcome: null, RouteReason: "deferred", Levers: "", SavingsUsd: null, Attempts: 1,
            Tags: "deferred"), cancellationToken);

    private async Task AppendAsync(UsageRecord record, CancellationToken cancellationToken)
    {
        if (ledger is not null)
        {
            if (accounts is not null)
            {
                // Revenue under the tenant's plan, as for a direct request: the plan prices the tokens, not the batch discount.
                record = record with { RevenueUsd = accounts.Price(record) };
            }
            // A duplicate (a re-poll after a restart) is skipped by the store: the job is billed once.
            await ledger.AppendAsync(record, cancellationToken);
        }
    }

    private Task FinishAsync(DeferredJob job, string status, string? result, string? error, CancellationToken cancellationToken) =>
        store.SaveAsync(job with { Status = status, ResultJson = result, ErrorJson = error, Finished = time.GetUtcNow() }, cancellationToken);

    private static string ExpiredError(DeferredJob job) =>
        Error($"The job was not answered before its deadline ({job.Deadline:O}).", "invalid_request_error", "deadline_exceeded");

    /// <summary>An OpenAI error object: <c>{"message","type","param","code"}</c>.</summary>
    public static string Error(string message, string type, string? code) =>
        new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = code }.ToJsonString();

    private IBatchApi ApiOf(GatewayModel snapshot, string provider)
    {
        lock (_batchApis)
        {
            if (!_batchApis.TryGetValue(provider, out var api))
            {
                var config = snapshot.Config.Providers[provider];
                _batchApis[provider] = api = config.Kind == "anthropic"
                    ? AnthropicBatchApi.Create(provider, config, time, ReadChat)
                    : OpenAIBatchApi.Create(provider, config, time);
            }
            return api;
        }
    }

    public void Dispose()
    {
        foreach (var api in _batchApis.Values)
        {
            api.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Deferral: submitted {Count} jobs as batch {Batch}")]
    private static partial void LogSubmitted(ILogger logger, string batch, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deferral: could not submit {Count} jobs to {Provider}'s batch API: {Reason}")]
    private static partial void LogSubmitFailed(ILogger logger, string provider, int count, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deferral: batch {Batch} ended ({Status}) without answering job {Job}; it goes in the next batch")]
    private static partial void LogResent(ILogger logger, string job, string batch, string status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deferral: could not poll batch {Batch}: {Reason}")]
    private static partial void LogPollFailed(ILogger logger, string batch, string reason);
}
