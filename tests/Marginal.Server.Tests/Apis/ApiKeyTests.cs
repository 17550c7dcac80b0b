using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace Marginal.Server.Tests.Apis;

public sealed class ApiKeyTests : IAsyncLifetime
{
    private const string KeyVariable = "MARGINAL_TEST_GATEWAY_KEY";
    private GatewayHost _host = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(KeyVariable, "sk-gateway-secret");
        _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s).Replace("  max_request_body_bytes: 65536", $"  max_request_body_bytes: 65536\n  api_key_env: {KeyVariable}", StringComparison.Ordinal));
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Theory]
    [InlineData(null, "missing_api_key")]
    [InlineData("Bearer wrong", "invalid_api_key")]
    [InlineData("Basic c2stZ2F0ZXdheS1zZWNyZXQ=", "missing_api_key")]
    public async Task Models_WithoutValidKey_Returns401(string? authorization, string code)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        var response = await _host.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal(code, error["code"]!.GetValue<string>());
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task Models_WithValidKey_Returns200()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-gateway-secret");

        var response = await _host.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Healthz_WithoutKey_StaysOpen()
    {
        var response = await _host.Http.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
