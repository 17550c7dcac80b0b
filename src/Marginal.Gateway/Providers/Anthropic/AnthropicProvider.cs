using Marginal.Gateway.Configuration;

namespace Marginal.Gateway.Providers.Anthropic;

/// <summary>Anthropic's Messages API through the official Anthropic SDK.</summary>
internal static class AnthropicProvider
{
    public static UpstreamProvider Create(string name, ProviderConfig config, string? apiKey, HttpClient http) =>
        throw new NotSupportedException("The anthropic provider is not wired yet.");
}
