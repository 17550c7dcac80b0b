using Marginal.Core.Errors;
using Marginal.Gateway.Configuration;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Providers;

/// <summary>
/// What every provider kind shares when it is built from its <see cref="ProviderConfig"/>: the API key and the stand-in
/// for a provider whose key is missing. Choosing the kind is the model's (<c>GatewayModel</c>), so this namespace never
/// depends on the kinds below it.
/// </summary>
public static class ProviderKeys
{
    /// <summary>Reads the key from the environment or a file. Returns a message when a key is configured but absent.</summary>
    internal static string? MissingKeyMessage(string name, ProviderConfig config, out string? apiKey)
    {
        apiKey = null;
        if (config.ApiKeyEnv is { } env)
        {
            apiKey = Environment.GetEnvironmentVariable(env);
            return string.IsNullOrEmpty(apiKey) ? $"Provider '{name}' has no API key: set the environment variable {env}." : null;
        }
        if (config.ApiKeyFile is { } file)
        {
            try
            {
                apiKey = File.ReadAllText(file).Trim();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return $"Provider '{name}' has no API key: cannot read its api_key_file.";
            }
            return apiKey.Length == 0 ? $"Provider '{name}' has no API key: its api_key_file is empty." : null;
        }
        return null;
    }

    /// <summary>Stands in for a provider whose key is missing, so the rest of the gateway still serves.</summary>
    internal sealed class UnavailableChatClient(string message) : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new GatewayException(GatewayErrorKind.UpstreamUnavailable, message, "provider_not_configured");

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new GatewayException(GatewayErrorKind.UpstreamUnavailable, message, "provider_not_configured");

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
