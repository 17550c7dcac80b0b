using Marginal.Gateway.Configuration;
using Marginal.Gateway.Routing.Learning;

namespace Marginal.Gateway.Routing.Aliases;

/// <summary>A learned router ready to score prompts: the model file's scorer and the route's threshold.</summary>
public sealed record LearnedRoute(PromptScorer Scorer, double Threshold, bool Feedback);

/// <summary>A cascade ready to run: its checks and, when configured, the verifier model and the score it must reach.</summary>
public sealed record CascadeRoute(CascadeChecks Checks, string? Verifier, int MinScore);

/// <summary>
/// The runtime form of one <c>routes:</c> entry: models resolved, rules compiled, the learned router loaded.
/// Immutable; part of the configuration snapshot, so a reload swaps it whole.
/// </summary>
public sealed class RouteAlias
{
    private RouteAlias(string name, RouteConfig config, LearnedRoute? learned)
    {
        Name = name;
        Strong = config.Strong!;
        Weak = config.Weak;
        DefaultModel = config.Default == "weak" ? config.Weak! : config.Strong!;
        Policies = [.. config.Policies.Select(p => new RoutePolicy(p, p.Model switch { "strong" => Strong, "weak" => Weak ?? Strong, var m => m! }))];
        Learned = learned;
        Cascade = config.Cascade is { } c
            ? new CascadeRoute(new CascadeChecks(c.Checks, c.RefusalPatterns), c.Checks.Contains("verifier") ? c.Verifier?.Model : null, c.Verifier?.MinScore ?? 7)
            : null;
        NoDowngradeTenants = new HashSet<string>(config.NoDowngradeTenants, StringComparer.Ordinal);
    }

    public string Name { get; }

    public string Strong { get; }

    public string? Weak { get; }

    public string DefaultModel { get; }

    public IReadOnlyList<RoutePolicy> Policies { get; }

    public LearnedRoute? Learned { get; }

    public CascadeRoute? Cascade { get; }

    public IReadOnlySet<string> NoDowngradeTenants { get; }

    /// <summary>Builds every alias of an already validated config; a learned-router file that cannot be read is a <see cref="ConfigException"/>.</summary>
    public static IReadOnlyDictionary<string, RouteAlias> Build(MarginalConfig config) =>
        config.Routes.ToDictionary(r => r.Key, r => new RouteAlias(r.Key, r.Value, Load(r.Key, r.Value.Learned)), StringComparer.Ordinal);

    private static LearnedRoute? Load(string name, LearnedRouterConfig? learned)
    {
        if (learned is null)
        {
            return null;
        }
        try
        {
            var (scorer, header) = RouterModelFile.Load(learned.Model!);
            return new LearnedRoute(scorer, learned.Threshold ?? header.SuggestedThreshold, learned.Feedback);
        }
        catch (RoutingDataException ex)
        {
            throw new ConfigException($"routes.{name}.learned.model: {ex.Message}");
        }
    }
}
