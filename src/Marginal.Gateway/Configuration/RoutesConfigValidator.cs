using System.Text.RegularExpressions;

namespace Marginal.Gateway.Configuration;

/// <summary>The <c>routes:</c> section: aliases, their models, policies, learned routers and cascades.</summary>
internal sealed class RoutesConfigValidator : IConfigValidator
{
    public static readonly string[] Defaults = ["strong", "weak"];
    public static readonly string[] CascadeChecks = ["json_schema", "refusal", "verifier"];

    public void Validate(MarginalConfig config, string file)
    {
        foreach (var (name, route) in config.Routes)
        {
            var at = $"{file}: routes.{name}";
            if (route is null)
            {
                throw new ConfigException($"{at}: is empty; needs at least 'strong' (a configured chat model)");
            }
            if (config.Models.ContainsKey(name))
            {
                throw new ConfigException($"{at}: a route alias cannot have the name of a configured model");
            }
            ChatModel(config, $"{at}.strong", route.Strong, required: true);
            ChatModel(config, $"{at}.weak", route.Weak, required: route.Learned is not null || route.Cascade is not null || route.Default == "weak");
            if (!Defaults.Contains(route.Default))
            {
                throw new ConfigException($"{at}.default: '{route.Default}' is not allowed (allowed: {string.Join(", ", Defaults)})");
            }
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < route.Policies.Count; i++)
            {
                Policy(config, $"{at}.policies[{i}]", route.Policies[i], names);
            }
            if (route.Learned is { } learned)
            {
                if (string.IsNullOrWhiteSpace(learned.Model))
                {
                    throw new ConfigException($"{at}.learned.model: is required (a file from `marginal router train`)");
                }
                if (learned.Threshold is { } t && !double.IsFinite(t))
                {
                    throw new ConfigException($"{at}.learned.threshold: must be a finite number (a score from `marginal router eval`), got {t}");
                }
            }
            if (route.Cascade is { } cascade)
            {
                foreach (var check in cascade.Checks)
                {
                    if (!CascadeChecks.Contains(check))
                    {
                        throw new ConfigException($"{at}.cascade.checks: '{check}' is not allowed (allowed: {string.Join(", ", CascadeChecks)})");
                    }
                }
                if (cascade.Checks.Count == 0)
                {
                    throw new ConfigException($"{at}.cascade.checks: is empty; name at least one of {string.Join(", ", CascadeChecks)}");
                }
                foreach (var pattern in cascade.RefusalPatterns ?? [])
                {
                    Pattern($"{at}.cascade.refusal_patterns", pattern);
                }
                if (cascade.Checks.Contains("verifier"))
                {
                    ChatModel(config, $"{at}.cascade.verifier.model", cascade.Verifier?.Model, required: true);
                    if (cascade.Verifier!.MinScore is < 0 or > 10)
                    {
                        throw new ConfigException($"{at}.cascade.verifier.min_score: must be from 0 to 10, got {cascade.Verifier.MinScore}");
                    }
                }
            }
        }
    }

    private static void Policy(MarginalConfig config, string at, RoutePolicyConfig? policy, HashSet<string> names)
    {
        if (policy is null)
        {
            throw new ConfigException($"{at}: is empty; needs 'name' and 'model'");
        }
        if (string.IsNullOrWhiteSpace(policy.Name) || !names.Add(policy.Name))
        {
            throw new ConfigException($"{at}.name: is required and must be unique within the route, got '{policy.Name}'");
        }
        if (policy.Model is not ("strong" or "weak"))
        {
            ChatModel(config, $"{at}.model", policy.Model, required: true, extra: "strong, weak, ");
        }
        foreach (var (key, min, max) in new[] { ("prompt_tokens", policy.MinPromptTokens, policy.MaxPromptTokens), ("prompt_chars", policy.MinPromptChars, policy.MaxPromptChars) })
        {
            if (min < 0 || max < 0 || (min is { } lo && max is { } hi && lo > hi))
            {
                throw new ConfigException($"{at}: min_{key} and max_{key} must not be negative and min must not exceed max (got {min}, {max})");
            }
        }
        if (policy.LastUserMatches is { } regex)
        {
            Pattern($"{at}.last_user_matches", regex);
        }
    }

    private static void Pattern(string at, string pattern)
    {
        try
        {
            _ = new Regex(pattern, RegexOptions.None, TimeSpan.FromMilliseconds(100));
        }
        catch (ArgumentException ex)
        {
            throw new ConfigException($"{at}: '{pattern}' is not a valid regular expression ({ex.Message.Split('\n')[0]})");
        }
    }

    private static void ChatModel(MarginalConfig config, string at, string? model, bool required, string extra = "")
    {
        if (model is null && !required)
        {
            return;
        }
        if (model is null || !config.Models.TryGetValue(model, out var m) || (m?.Type ?? "chat") != "chat")
        {
            var chat = config.Models.Where(p => (p.Value?.Type ?? "chat") == "chat").Select(p => p.Key).ToList();
            throw new ConfigException($"{at}: '{model}' is not a chat model defined under models (allowed: {extra}{(chat.Count == 0 ? "none" : string.Join(", ", chat))})");
        }
    }
}
