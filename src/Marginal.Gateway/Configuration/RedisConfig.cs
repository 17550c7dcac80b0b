namespace Marginal.Gateway.Configuration;

/// <summary>
/// The <c>redis:</c> section of marginal.yaml: what a cluster of nodes shares in Redis (docs/operations.md, "Running a
/// cluster"): budget and rate-limit counters, the exact response cache and config-change notifications. Absent: each
/// node keeps them in process.
/// </summary>
public sealed class RedisConfig
{
    public static readonly string[] FailModes = ["closed", "open"];

    /// <summary>The environment variable holding the StackExchange.Redis configuration string (never inline: it may carry a password).</summary>
    public string? ConnectionStringEnv { get; set; }

    /// <summary>A file holding the configuration string (e.g. a mounted secret), instead of an environment variable.</summary>
    public string? ConnectionStringFile { get; set; }

    /// <summary>
    /// Redis unreachable: <c>closed</c> (default) refuses requests under a budget or rate limit with 503, since
    /// nothing could hold the limit; <c>open</c> admits them uncounted.
    /// </summary>
    public string BudgetsFail { get; set; } = "closed";

    /// <summary>Prefix of every key and channel, so several deployments can share one Redis.</summary>
    public string KeyPrefix { get; set; } = "marginal";

    /// <summary>
    /// How long the prompt embedding of a request the learned router sent to the weak model stays in Redis, so feedback
    /// on any node (also after the routing node restarted) can still teach the router: a duration from <c>1m</c> to
    /// <c>7d</c>, or <c>off</c>. Default <c>1h</c>: about 2 KB of Redis memory per such request for the window
    /// (docs/operations.md, "Running a cluster").
    /// </summary>
    public string RouteFeedbackWindow { get; set; } = "1h";

    public bool FailOpen => BudgetsFail == "open";

    /// <summary>The parsed <see cref="RouteFeedbackWindow"/>; null when <c>off</c>.</summary>
    public TimeSpan? FeedbackWindow => RouteFeedbackWindow == "off" ? null
        : Durations.TryParseTtl(RouteFeedbackWindow, out var window) ? window : TimeSpan.FromHours(1);
}
