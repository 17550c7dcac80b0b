using System.Globalization;
using Marginal.Core.Requests;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Wire;

/// <summary>OpenAI's <c>x-ratelimit-*</c> headers from what admission decided: the limit, what is left and when the window resets, for requests and for tokens.</summary>
internal static class RateLimitHeaders
{
    /// <summary>Writes the headers of <paramref name="outcome"/>'s windows; nothing when admission counted no rate (or did not run).</summary>
    public static void Write(HttpResponse response, AdmissionOutcome? outcome)
    {
        if (outcome is null)
        {
            return;
        }
        Write(response.Headers, outcome.Requests, "requests");
        Write(response.Headers, outcome.Tokens, "tokens");
    }

    private static void Write(IHeaderDictionary headers, RateLimitWindow? window, string suffix)
    {
        if (window is not { } w)
        {
            return;
        }
        headers[$"x-ratelimit-limit-{suffix}"] = w.Limit.ToString(CultureInfo.InvariantCulture);
        headers[$"x-ratelimit-remaining-{suffix}"] = w.Remaining.ToString(CultureInfo.InvariantCulture);
        headers[$"x-ratelimit-reset-{suffix}"] = string.Create(CultureInfo.InvariantCulture, $"{Math.Max(1, Math.Ceiling(w.Reset.TotalSeconds))}s");
    }
}
