namespace Marginal.Gateway.Configuration;

/// <summary>The <c>deferral:</c> section: durations, batch size, and the providers and models it names.</summary>
internal sealed class DeferralConfigValidator : IConfigValidator
{
    public void Validate(MarginalConfig config, string file)
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
