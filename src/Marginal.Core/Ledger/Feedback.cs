namespace Marginal.Core.Ledger;

/// <summary>
/// What a client reported about an answer after it got it (<c>POST /v1/feedback</c>): a quality score, an outcome, or
/// both. Feedback labels production traffic for the router and drives value-based revenue. Append-only; a request may
/// collect several.
/// </summary>
/// <param name="RequestId">The ledger id of the request the feedback is about.</param>
/// <param name="Time">When the feedback arrived.</param>
/// <param name="Tenant">The tenant that sent it (always the request's own tenant).</param>
/// <param name="Score">A quality score in [0, 1] (1 = the answer was good enough); null when not given.</param>
/// <param name="Outcome">A named outcome, e.g. <c>success</c>, <c>failure</c> or <c>ticket_resolved</c>; null when not given.</param>
public sealed record Feedback(string RequestId, DateTimeOffset Time, string Tenant, double? Score, string? Outcome);
