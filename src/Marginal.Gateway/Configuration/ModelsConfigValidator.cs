namespace Marginal.Gateway.Configuration;

/// <summary>The <c>models:</c> section: each model's provider, type and fallbacks.</summary>
internal sealed class ModelsConfigValidator : IConfigValidator
{
    public void Validate(MarginalConfig config, string file)
    {
        foreach (var (name, model) in config.Models)
        {
            var at = $"{file}: models.{name}";
            if (model is null)
            {
                throw new ConfigException($"{at}: is empty; needs at least 'provider'");
            }
            if (model.Provider is null || !config.Providers.TryGetValue(model.Provider, out var provider))
            {
                throw new ConfigException($"{at}.provider: '{model.Provider}' is not defined under providers (defined: {Names(config.Providers.Keys)})");
            }
            if (model.Type is not null && !ConfigLoader.ModelTypes.Contains(model.Type))
            {
                throw new ConfigException($"{at}.type: '{model.Type}' is not allowed (allowed: {string.Join(", ", ConfigLoader.ModelTypes)})");
            }
            if (model.Type == "embedding" && provider.Kind != "openai")
            {
                throw new ConfigException($"{at}.type: embedding models need an openai-kind provider; '{model.Provider}' is {provider.Kind}");
            }
            foreach (var fallback in model.Fallbacks)
            {
                if (fallback == name || !config.Models.TryGetValue(fallback, out var target))
                {
                    throw new ConfigException($"{at}.fallbacks: '{fallback}' is not another model defined under models (defined: {Names(config.Models.Keys)})");
                }
                if ((target?.Type ?? "chat") != (model.Type ?? "chat"))
                {
                    throw new ConfigException($"{at}.fallbacks: '{fallback}' is a {target?.Type ?? "chat"} model; a fallback must be of the same type");
                }
            }
        }
    }

    private static string Names(IEnumerable<string> names)
    {
        var list = string.Join(", ", names);
        return list.Length == 0 ? "none" : list;
    }
}
