namespace Marginal.Gateway.Configuration;

/// <summary>
/// The <c>deferral:</c> section of marginal.yaml: batch-tier deferral of requests that can wait
/// (README, "Deferred (batch) requests").
/// </summary>
public sealed class DeferralConfig
{
    /// <summary>False (default): the jobs API is off and a request with <c>x-marginal-deadline</c> gets 400.</summary>
    public bool Enabled { get; set; }

    /// <summary>Deadline of a job deferred by <see cref="Models"/> without a header, e.g. <c>24h</c>.</summary>
    public string DefaultDeadline { get; set; } = "24h";

    /// <summary>How often queued jobs are flushed to their provider and running batches polled, e.g. <c>30s</c>.</summary>
    public string FlushInterval { get; set; } = "30s";

    /// <summary>Most jobs sent in one batch (OpenAI allows 50,000 requests per batch file).</summary>
    public int FlushSize { get; set; } = 1000;

    /// <summary>Providers (names under <c>providers</c>) whose batch API serves deferred jobs; jobs for other providers run through the normal pipeline when flushed.</summary>
    public List<string> BatchProviders { get; set; } = [];

    /// <summary>Models whose requests are always deferred, header or not.</summary>
    public List<string> Models { get; set; } = [];

    public TimeSpan FlushEvery => Durations.TryParseWait(FlushInterval, out var every) ? every : TimeSpan.FromSeconds(30);

    public TimeSpan DefaultWait => Durations.TryParseWait(DefaultDeadline, out var wait) ? wait : TimeSpan.FromHours(24);

    /// <summary>Checks the section against the rest of <paramref name="config"/>; every failure is one line naming the key.</summary>
    internal static void Validate(MarginalConfig config, string file)
    {
        var deferral = config.Deferral;
        var at = $"{file}: deferral";
        if (!Durations.TryParseWait(deferral.DefaultDeadline, out _))
        {
            throw new ConfigException($"{at}.default_deadline: '{deferral.DefaultDeadline}' is not a duration (e.g. 30m, 6h, 1d, PT6H)");
        }
        if (!Durations.TryParseWait(deferral.FlushInterval, out _))
        {
            throw new ConfigException($"{at}.flush_interval: '{deferral.FlushInterval}' is not a duration (e.g. 200ms, 30s, 5m)");
        }
        if (deferral.FlushSize is < 1 or > 50_000)
        {
            throw new ConfigException($"{at}.flush_size: must be from 1 to 50000 (OpenAI's limit per batch), got {deferral.FlushSize}");
        }
        foreach (var name in deferral.BatchProviders)
        {
            if (!config.Providers.TryGetValue(name, out var provider) || provider is null)
            {
                throw new ConfigException($"{at}.batch_providers: '{name}' is not defined under providers");
            }
            if (provider.Kind is not ("openai" or "anthropic"))
            {
                throw new ConfigException($"{at}.batch_providers: '{name}' is {provider.Kind}; only openai- and anthropic-kind providers have a batch API here");
            }
        }
        foreach (var name in deferral.Models)
        {
            if (!config.Models.ContainsKey(name))
            {
                throw new ConfigException($"{at}.models: '{name}' is not defined under models");
            }
        }
    }
}
