namespace Marginal.Gateway.Configuration;

/// <summary>The <c>shaping:</c> section: the models it excludes must be configured.</summary>
internal sealed class ShapingConfigValidator : IConfigValidator
{
    public void Validate(MarginalConfig config, string file)
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
