namespace Marginal.Gateway.Configuration;

/// <summary>
/// The <c>shaping:</c> section of marginal.yaml: keeping the cacheable prefix of requests stable so providers' prompt
/// caches hit (docs/architecture.md, "Prefix-aware shaping").
/// </summary>
public sealed class ShapingConfig
{
    /// <summary>Sort the request's tools by name before it goes upstream (default true). Tools are a set: their order carries no meaning.</summary>
    public bool SortTools { get; set; } = true;

    /// <summary>Models whose requests go upstream exactly as the client sent them.</summary>
    public List<string> ExcludeModels { get; set; } = [];

    internal static void Validate(MarginalConfig config, string file)
    {
        foreach (var name in config.Shaping.ExcludeModels)
        {
            if (!config.Models.ContainsKey(name))
            {
                throw new ConfigException($"{file}: shaping.exclude_models: '{name}' is not defined under models");
            }
        }
    }
}
