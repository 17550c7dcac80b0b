using System.Text.RegularExpressions;
using Marginal.Core.Requests;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Tokens;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Routing.Aliases;

/// <summary>A compiled policy rule: every condition the config gave must hold. Immutable and thread-safe.</summary>
public sealed class RoutePolicy
{
    private readonly RoutePolicyConfig _config;
    private readonly HashSet<string>? _tenants;
    private readonly Regex? _lastUser;

    public RoutePolicy(RoutePolicyConfig config, string model)
    {
        _config = config;
        Name = config.Name!;
        Model = model;
        _tenants = config.Tenants is { } tenants ? new HashSet<string>(tenants, StringComparer.Ordinal) : null;
        // A timeout bounds what a pathological pattern can cost one request.
        _lastUser = config.LastUserMatches is { } pattern ? new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(50)) : null;
    }

    public string Name { get; }

    /// <summary>The configured model the rule sends matching requests to.</summary>
    public string Model { get; }

    public bool Matches(RouteRequest request)
    {
        if (_tenants is not null && !_tenants.Contains(request.Tenant))
        {
            return false;
        }
        if (_config.Metadata is { } wanted)
        {
            foreach (var (key, value) in wanted)
            {
                if (request.Metadata is null || !request.Metadata.TryGetValue(key, out var actual) || actual != value)
                {
                    return false;
                }
            }
        }
        if (_config.Tools is { } tools && tools != request.HasTools)
        {
            return false;
        }
        if (_config.Images is { } images && images != request.HasImages)
        {
            return false;
        }
        if ((_config.MinPromptChars ?? _config.MaxPromptChars) is not null && !Within(request.PromptChars, _config.MinPromptChars, _config.MaxPromptChars))
        {
            return false;
        }
        if ((_config.MinPromptTokens ?? _config.MaxPromptTokens) is not null && !Within(request.PromptTokens, _config.MinPromptTokens, _config.MaxPromptTokens))
        {
            return false;
        }
        if (_lastUser is not null)
        {
            try
            {
                return _lastUser.IsMatch(request.LastUserText);
            }
            catch (RegexMatchTimeoutException)
            {
                return false;
            }
        }
        return true;
    }

    private static bool Within(long value, long? min, long? max) => (min is null || value >= min) && (max is null || value <= max);
}

/// <summary>What the router looks at in a request; each feature is computed only when a rule asks (tokens: o200k_base).</summary>
public sealed class RouteRequest(IReadOnlyList<ChatMessage> messages, ChatOptions options, GatewayContext? context)
{
    private long? _tokens;
    private long? _chars;
    private string? _lastUser;

    public IReadOnlyList<ChatMessage> Messages { get; } = messages;

    public string Tenant { get; } = context?.Tenant ?? "default";

    public IReadOnlyDictionary<string, string>? Metadata { get; } = context?.Metadata;

    public bool HasTools { get; } = options.Tools is { Count: > 0 };

    public bool HasImages => Messages.Any(m => m.Contents.Any(c => c is DataContent d && d.HasTopLevelMediaType("image") || c is UriContent u && u.HasTopLevelMediaType("image")));

    public long PromptChars => _chars ??= Messages.Sum(m => (long)m.Text.Length);

    public long PromptTokens => _tokens ??= TokenCounter.CountPrompt("o200k_base", Messages);

    /// <summary>The text of the last user message ("" when there is none): what the learned router and regex rules read.</summary>
    public string LastUserText => _lastUser ??= Messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
}
