namespace Marginal.Core.Requests;

/// <summary>
/// What admission decided for one request, written by the admission stage alone: the rate-limit windows it counted
/// the request in (the tightest scope of each, for OpenAI's <c>x-ratelimit-*</c> headers, which the server writes from
/// this) and the free tier's downgrade. Set before a refusal too, so a 429 carries the windows that refused it.
/// </summary>
/// <param name="Requests">The requests-per-minute window; null when no allowance limits requests.</param>
/// <param name="Tokens">The tokens-per-minute window; null when no allowance limits tokens.</param>
/// <param name="FreeTierModel">The model the request was sent to instead of the one asked for, its tenant's free allowance being used up; null otherwise.</param>
public sealed record AdmissionOutcome(RateLimitWindow? Requests, RateLimitWindow? Tokens, string? FreeTierModel);

/// <summary>One rate-limit window as a client sees it: its limit, what is left after this request, and how long until it resets.</summary>
public readonly record struct RateLimitWindow(decimal Limit, decimal Remaining, TimeSpan Reset);
