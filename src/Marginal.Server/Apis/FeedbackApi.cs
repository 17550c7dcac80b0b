using System.Text.Json;
using System.Text.RegularExpressions;
using Marginal.Core.Errors;
using Marginal.Core.Ledger;
using Marginal.Gateway.Admission;
using Marginal.Gateway.Routing;
using Marginal.Economics.Plans;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Server.Cluster;
using Marginal.Server.Hosting;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Marginal.Server.Apis;

/// <summary>
/// <c>POST /v1/feedback</c> <c>{"request_id": "req_…", "score": 0.9, "outcome": "ticket_resolved"}</c>: what the client
/// learned about an answer after it got it. <c>request_id</c> is the <c>x-marginal-request-id</c> the answer carried and
/// must belong to the caller's tenant; at least one of <c>score</c> (a number in [0, 1]) and <c>outcome</c> (a word of
/// letters, digits, <c>_ . -</c>, up to 64 characters) is required. Answers 200 with the stored feedback, 404 for a request
/// this tenant never made. Stored in the ledger beside the request's record.
/// </summary>
public static partial class FeedbackApi
{
    public static IEndpointRouteBuilder MapFeedbackApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/feedback", HandleAsync);
        return app;
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex OutcomePattern();

    private static async Task HandleAsync(HttpContext http, ILedgerStore ledger, TimeProvider time)
    {
        try
        {
            var (requestId, score, outcome) = await ReadAsync(http);
            var tenant = KeyAuthentication.KeyOf(http)?.Tenant ?? "default";
            var record = await ledger.FindAsync(requestId, http.RequestAborted);
            // Another tenant's request is answered exactly like one that does not exist.
            if (record is null || record.Tenant != tenant || record.Kind != UsageRecordKinds.Usage)
            {
                throw new GatewayException(GatewayErrorKind.NotFound, $"No request with id '{requestId}'.", "request_not_found", "request_id");
            }
            var feedback = new Feedback(requestId, time.GetUtcNow(), tenant, score, outcome);
            await ledger.AppendFeedbackAsync(feedback, CancellationToken.None);
            // A request the router downgraded becomes a labelled example for later decisions on similar prompts.
            if (http.RequestServices.GetService<RouteFeedback>() is { } routeFeedback && RouteFeedback.LabelOf(score, outcome) is { } label)
            {
                var cluster = http.RequestServices.GetService<ClusterRouteFeedback>();
                if (routeFeedback.Learn(requestId, label, out var example))
                {
                    if (ledger is IRouteExampleStore examples)
                    {
                        // Kept with the embedding so the label is rebuilt on the next start (the ledger holds no prompt text).
                        await examples.SaveRouteExampleAsync(example!, CancellationToken.None);
                    }
                    if (cluster is not null)
                    {
                        await cluster.LearnedAsync(example!, label);
                    }
                }
                else if (cluster is not null)
                {
                    // Routed by another node of the cluster, or by this one before it restarted: the embedding is in
                    // Redis for the feedback window, or in the routing node's memory.
                    await cluster.LearnAsync(requestId, label);
                }
            }
            if (outcome is not null && http.RequestServices.GetService<AdmissionPolicy>() is { } admission && http.RequestServices.GetService<LedgerWriter>() is { } writer)
            {
                await BookOutcomeAsync(admission, writer, record, outcome, feedback.Time);
            }
            http.Response.ContentType = "application/json";
            using var json = new Utf8JsonWriter(http.Response.BodyWriter);
            json.WriteStartObject();
            json.WriteString("object", "marginal.feedback");
            json.WriteString("request_id", feedback.RequestId);
            json.WriteString("created", feedback.Time);
            if (score is { } s)
            {
                json.WriteNumber("score", s);
            }
            else
            {
                json.WriteNull("score");
            }
            json.WriteString("outcome", outcome);
            json.WriteEndObject();
            await json.FlushAsync(http.RequestAborted);
        }
        catch (GatewayException error) when (!http.Response.HasStarted)
        {
            await OpenAIErrors.WriteAsync(http, error);
        }
    }

    /// <summary>
    /// Value-based pricing: an outcome the tenant's plan prices becomes an <c>outcome</c> record carrying its revenue,
    /// booked once per request and outcome (its id is derived from both, so a repeated report is not billed again). A
    /// request that was tagged with the outcome (<c>x-marginal-tags</c>) was billed for it with its own record, so the
    /// same outcome reported again here books nothing.
    /// </summary>
    private static async Task BookOutcomeAsync(AdmissionPolicy admission, LedgerWriter writer, UsageRecord request, string outcome, DateTimeOffset at)
    {
        if (PlanPricer.OutcomeRevenue(admission.Billing.PlanOf(request.Tenant), outcome) is not { } revenue || PlanPricer.BilledAsTag(request, outcome))
        {
            return;
        }
        var record = new UsageRecord($"{request.Id}~outcome~{outcome}", at, request.Tenant, request.KeyId, request.RequestedModel, request.ServedModel,
            request.Provider, request.CapacitySource, "ok", false, 0, 0, 0, 0, 0, "none", 0, null, null, null, revenue, null, null, "", null, 0,
            Kind: UsageRecordKinds.Outcome, Adjusts: request.Id, Tags: outcome);
        if (await writer.AppendAsync(record, CancellationToken.None))
        {
            admission.Accounts.Burn(request.Tenant, at, revenue);
        }
    }

    private static async Task<(string RequestId, double? Score, string? Outcome)> ReadAsync(HttpContext http)
    {
        JsonDocument body;
        try
        {
            body = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted);
        }
        catch (JsonException)
        {
            throw GatewayException.InvalidRequest("The body must be JSON: {\"request_id\": string, \"score\": number in [0, 1], \"outcome\": string}.", null, "invalid_body");
        }
        using (body)
        {
            try
            {
                return Read(body.RootElement);
            }
            catch (InvalidOperationException)
            {
                // JsonDocument keeps strings as raw bytes; decoding text that is not UTF-8 fails here, not at parse.
                throw GatewayException.InvalidRequest("The body must be JSON in UTF-8; it holds text that is not valid UTF-8.", null, "invalid_encoding");
            }
        }
    }

    private static (string RequestId, double? Score, string? Outcome) Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.InvalidRequest("The request body must be a JSON object.", null, "invalid_body");
        }
        if (!root.TryGetProperty("request_id", out var id) || id.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(id.GetString()))
        {
            throw GatewayException.InvalidRequest("'request_id' is required: the x-marginal-request-id of the answer.", "request_id", "missing_required_parameter");
        }
        ClientBounds.Check(id.GetString(), ClientBounds.RequestId, "request_id");
        double? score = null;
        if (root.TryGetProperty("score", out var s) && s.ValueKind != JsonValueKind.Null)
        {
            if (s.ValueKind != JsonValueKind.Number || !s.TryGetDouble(out var value) || !(value is >= 0 and <= 1))
            {
                throw GatewayException.InvalidRequest("'score' must be a number from 0 to 1.", "score", "invalid_value");
            }
            score = value;
        }
        string? outcome = null;
        if (root.TryGetProperty("outcome", out var o) && o.ValueKind != JsonValueKind.Null)
        {
            if (o.ValueKind != JsonValueKind.String || !OutcomePattern().IsMatch(o.GetString()!))
            {
                throw GatewayException.InvalidRequest("'outcome' must be a word of letters, digits, '_', '.' or '-', up to 64 characters.", "outcome", "invalid_value");
            }
            outcome = o.GetString();
        }
        if (score is null && outcome is null)
        {
            throw GatewayException.InvalidRequest("Give 'score', 'outcome' or both.", "score", "missing_required_parameter");
        }
        return (id.GetString()!, score, outcome);
    }
}
