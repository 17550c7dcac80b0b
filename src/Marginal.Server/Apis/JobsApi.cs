using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Core.Deferral;
using Marginal.Core.Errors;
using Marginal.Gateway.Deferral;
using Marginal.Gateway.Model;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Server.Hosting;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Marginal.Server.Apis;

/// <summary>
/// Deferred (batch-tier) requests: a chat completion with <c>x-marginal-deadline</c>, or for a model listed under
/// <c>deferral.models</c>, is stored as a job and answered <c>202</c>; <c>GET /v1/marginal/jobs/{id}</c> reads it back.
/// A job is visible to its own tenant only (another tenant's id is 404, the same as an unknown one).
/// </summary>
public static class JobsApi
{
    public const string DeadlineHeader = "x-marginal-deadline";

    public static IEndpointRouteBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/marginal/jobs/{id}", GetAsync);
        return app;
    }

    private static async Task GetAsync(HttpContext http, string id, IJobStore store)
    {
        var tenant = KeyAuthentication.KeyOf(http)?.Tenant ?? "default";
        var job = await store.FindJobAsync(id, http.RequestAborted);
        if (job is null || job.Tenant != tenant)
        {
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status404NotFound, $"No job with id '{id}'.", "invalid_request_error", "job_not_found", "id");
            return;
        }
        await WriteJobAsync(http, job, StatusCodes.Status200OK);
    }

    /// <summary>
    /// The body in memory when this request might be deferred (it has the deadline header, or some model is always
    /// deferred), so the job can keep it as sent; null otherwise. The header without deferral enabled is a 400.
    /// </summary>
    public static async Task<byte[]?> BufferIfDeferrableAsync(HttpContext http, CancellationToken cancellationToken)
    {
        var queue = http.RequestServices.GetService<DeferralQueue>();
        var hasHeader = http.Request.Headers.ContainsKey(DeadlineHeader);
        if (hasHeader && queue is null)
        {
            throw new GatewayException(GatewayErrorKind.InvalidRequest,
                $"The {DeadlineHeader} header asks for deferral, which is not enabled on this gateway (deferral.enabled in marginal.yaml, with storage).",
                "deferral_disabled", DeadlineHeader);
        }
        if (queue is null || (!hasHeader && http.RequestServices.GetRequiredService<GatewayModelSource>().Current.Config.Deferral.Models.Count == 0))
        {
            return null;
        }
        using var buffer = new MemoryStream();
        await http.Request.Body.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }

    /// <summary>Stores the request as a job and answers 202 when it is deferrable; false (nothing written) when it is not.</summary>
    public static async Task<bool> TryDeferAsync(HttpContext http, ChatCompletionRequest request, byte[] body, string tenant, string keyId, TimeProvider time)
    {
        var config = http.RequestServices.GetRequiredService<GatewayModelSource>().Current.Config;
        var now = time.GetUtcNow();
        DateTimeOffset deadline;
        if (http.Request.Headers.TryGetValue(DeadlineHeader, out var header))
        {
            if (!Deadlines.TryParse(header.ToString(), now, out deadline))
            {
                throw new GatewayException(GatewayErrorKind.InvalidRequest,
                    $"The {DeadlineHeader} header '{ClientBounds.Shown(header.ToString())}' is not a deadline: give an ISO-8601 time with an offset (e.g. 2026-11-28T18:00:00Z) or a duration (e.g. 90s, 30m, 6h, 1d, PT6H), in the future and at most {Deadlines.Longest.TotalDays:0} days away.",
                    "invalid_deadline", DeadlineHeader);
            }
        }
        else if (config.Deferral.Models.Contains(request.Model!))
        {
            deadline = now + config.Deferral.DefaultWait;
        }
        else
        {
            return false;
        }
        if (request.Stream == true)
        {
            throw new GatewayException(GatewayErrorKind.InvalidRequest, "A deferred request cannot be streamed: its answer is fetched from the jobs API.", "deferred_stream", "stream");
        }
        if (!config.Models.ContainsKey(request.Model!))
        {
            throw GatewayException.ModelNotFound($"The model '{request.Model}' does not exist.");
        }
        var job = new DeferredJob(
            Id: "job_" + Guid.CreateVersion7().ToString("N"),
            RequestId: RequestIds.Of(http, tenant, time),
            Tenant: tenant,
            KeyId: keyId,
            Model: request.Model!,
            Status: JobStatus.Queued,
            Created: now,
            Deadline: deadline,
            RequestJson: Encoding.UTF8.GetString(body));
        await http.RequestServices.GetRequiredService<IJobStore>().SaveAsync(job, http.RequestAborted);
        http.Response.Headers.Location = $"/v1/marginal/jobs/{job.Id}";
        http.Response.Headers["x-marginal-request-id"] = job.RequestId;
        await WriteJobAsync(http, job, StatusCodes.Status202Accepted);
        return true;
    }

    private static Task WriteJobAsync(HttpContext http, DeferredJob job, int status)
    {
        var body = new JsonObject
        {
            ["id"] = job.Id,
            ["object"] = "marginal.job",
            ["status"] = job.Status,
            ["model"] = job.Model,
            ["request_id"] = job.RequestId,
            ["created_at"] = job.Created.ToUnixTimeSeconds(),
            ["deadline_at"] = job.Deadline.ToUnixTimeSeconds(),
            ["completed_at"] = job.Finished?.ToUnixTimeSeconds(),
            ["response"] = job.ResultJson is null ? null : JsonNode.Parse(job.ResultJson),
            ["error"] = job.ErrorJson is null ? null : JsonNode.Parse(job.ErrorJson),
        };
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(body.ToJsonString(), http.RequestAborted);
    }
}
