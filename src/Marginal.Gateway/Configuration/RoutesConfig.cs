namespace Marginal.Gateway.Configuration;

// The `routes:` section: aliases a client may name instead of a model (e.g. `auto`). See README, "Routing".

/// <summary>One route alias: the models it chooses between and how it chooses.</summary>
public sealed class RouteConfig
{
    /// <summary>The model that answers when nothing cheaper is good enough; the counterfactual of the routing saving.</summary>
    public string? Strong { get; set; }

    /// <summary>The cheaper model the learned router and the cascade may downgrade to.</summary>
    public string? Weak { get; set; }

    /// <summary><c>strong</c> (default) or <c>weak</c>: the model when no policy, learned router or cascade decides.</summary>
    public string Default { get; set; } = "strong";

    /// <summary>Rules tried in order; the first that matches picks the model (reason <c>policy:&lt;name&gt;</c>).</summary>
    public List<RoutePolicyConfig> Policies { get; set; } = [];

    /// <summary>The learned router; none: no learned decision.</summary>
    public LearnedRouterConfig? Learned { get; set; }

    /// <summary>Weak model first, the strong one when a check fails; none: no cascade.</summary>
    public CascadeConfig? Cascade { get; set; }

    /// <summary>Tenants whose requests are never downgraded by the learned router, the cascade or a weak default.</summary>
    public List<string> NoDowngradeTenants { get; set; } = [];
}

/// <summary>A policy rule: every condition given must hold (none given: always matches).</summary>
public sealed class RoutePolicyConfig
{
    /// <summary>Names the rule in the route reason.</summary>
    public string? Name { get; set; }

    /// <summary>The model when the rule matches: <c>strong</c>, <c>weak</c> or any configured chat model.</summary>
    public string? Model { get; set; }

    /// <summary>The request's tenant is one of these.</summary>
    public List<string>? Tenants { get; set; }

    /// <summary>The request's metadata holds each of these key/value pairs.</summary>
    public Dictionary<string, string>? Metadata { get; set; }

    /// <summary>Prompt length bounds in tokens (o200k_base count of every message's text, plus framing).</summary>
    public long? MinPromptTokens { get; set; }

    public long? MaxPromptTokens { get; set; }

    /// <summary>Prompt length bounds in characters (every message's text).</summary>
    public long? MinPromptChars { get; set; }

    public long? MaxPromptChars { get; set; }

    /// <summary>True: the request offers tools; false: it offers none.</summary>
    public bool? Tools { get; set; }

    /// <summary>True: some message carries an image; false: none does.</summary>
    public bool? Images { get; set; }

    /// <summary>A .NET regular expression that must match the last user message's text.</summary>
    public string? LastUserMatches { get; set; }
}

/// <summary>The learned router: a model file from <c>marginal router train</c> and its threshold.</summary>
public sealed class LearnedRouterConfig
{
    /// <summary>The model file (relative paths are from the config file's folder).</summary>
    public string? Model { get; set; }

    /// <summary>
    /// Prompts scoring at least this go to the strong model; higher saves more and risks more. The scale is the model's
    /// (<c>marginal router eval</c> prints the strong share and accuracy at each threshold). Default: the file's suggestion.
    /// </summary>
    public double? Threshold { get; set; }

    /// <summary>True (default): feedback on routed requests (POST /v1/feedback) refines later decisions.</summary>
    public bool Feedback { get; set; } = true;
}

/// <summary>The cascade: the weak model answers first; a failed check sends the request to the strong model.</summary>
public sealed class CascadeConfig
{
    /// <summary>Which checks run: <c>json_schema</c>, <c>refusal</c>, <c>verifier</c>. Default: json_schema and refusal.</summary>
    public List<string> Checks { get; set; } = ["json_schema", "refusal"];

    /// <summary>Regular expressions that mark a refusal (case-insensitive); default: a built-in list.</summary>
    public List<string>? RefusalPatterns { get; set; }

    /// <summary>The grading model for the <c>verifier</c> check.</summary>
    public VerifierConfig? Verifier { get; set; }
}

/// <summary>A model asked to grade the weak answer from 0 to 10; below <see cref="MinScore"/> escalates.</summary>
public sealed class VerifierConfig
{
    public string? Model { get; set; }

    public int MinScore { get; set; } = 7;
}
