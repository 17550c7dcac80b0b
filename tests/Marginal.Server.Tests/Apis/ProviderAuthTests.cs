using System.Text;

namespace Marginal.Server.Tests.Apis;

/// <summary>How the gateway presents its upstream key: Bearer by default, or a custom header such as Azure's <c>api-key</c>.</summary>
public sealed class ProviderAuthTests : IAsyncLifetime
{
    private const string KeyVariable = "MARGINAL_TEST_UPSTREAM_KEY";
    private GatewayHost _host = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(KeyVariable, "sk-upstream-secret");
        _host = await GatewayHost.StartAsync((p, s) => $"""
            providers:
              bearer:
                kind: openai
                base_url: {p.OpenAIBaseUrl}
                api_key_env: {KeyVariable}
              azure:
                kind: openai
                base_url: {s.OpenAIBaseUrl}
                api_key_env: {KeyVariable}
                api_key_header: api-key
              keyless:
                kind: openai
                base_url: {s.OpenAIBaseUrl}
              missing:
                kind: openai
                base_url: {s.OpenAIBaseUrl}
                api_key_env: MARGINAL_TEST_VARIABLE_NOBODY_SETS
            models:
              via-bearer:
                provider: bearer
              via-azure:
                provider: azure
              via-keyless:
                provider: keyless
              via-missing:
                provider: missing
            """);
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private Task<HttpResponseMessage> PostAsync(string model) =>
        _host.Http.PostAsync("/v1/chat/completions", new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));

    [Fact]
    public async Task DefaultProvider_SendsKeyAsBearer()
    {
        await PostAsync("via-bearer");

        Assert.Equal("Bearer sk-upstream-secret", _host.Primary.Requests.Single().Headers["authorization"]);
    }

    [Fact]
    public async Task ApiKeyHeader_SendsKeyInThatHeaderOnly()
    {
        await PostAsync("via-azure");

        var headers = _host.Secondary.Requests.Single().Headers;
        Assert.Equal("sk-upstream-secret", headers["api-key"]);
        Assert.False(headers.ContainsKey("authorization"));
    }

    [Fact]
    public async Task KeylessProvider_SendsNoRealKey()
    {
        await PostAsync("via-keyless");

        Assert.DoesNotContain("sk-upstream-secret", _host.Secondary.Requests.Single().Headers.GetValueOrDefault("authorization") ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingKeyVariable_Returns503NamingTheVariable()
    {
        var response = await PostAsync("via-missing");

        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("MARGINAL_TEST_VARIABLE_NOBODY_SETS", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Empty(_host.Secondary.Requests);
    }
}
