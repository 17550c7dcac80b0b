using Marginal.Server.Composition;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;
using Microsoft.Extensions.Logging;

namespace Marginal.Server.Tests.Hosting;

/// <summary>
/// The admin surfaces under attack: wrong admin keys are throttled per address (429 with Retry-After), a refusal never
/// logs above Information, a short admin key stops the server at start, and <c>/metrics</c> can require the admin key.
/// </summary>
public sealed class AdminSecurityTests : IAsyncLifetime
{
    private const string AdminVariable = "MARGINAL_TEST_SECURITY_ADMIN_KEY";
    private const string AdminKey = "security-admin-key-0123456789abcdef";
    private GatewayHost _host = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(AdminVariable, AdminKey);
        _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s)
            .Replace("  auth: none", $"  auth: keys\n  admin_key_env: {AdminVariable}", StringComparison.Ordinal));
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? bearer) => SendAsync(_host, method, path, bearer);

    private static async Task<HttpResponseMessage> SendAsync(GatewayHost host, HttpMethod method, string path, string? bearer)
    {
        using var request = new HttpRequestMessage(method, path);
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        return await host.Http.SendAsync(request);
    }

    private static async Task<string?> ErrorCodeAsync(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["code"]?.GetValue<string>();

    [Fact]
    public async Task AdminKeys_WrongKeyOnGetAndDelete_401AndNothingLoggedAboveInformation()
    {
        // What the start logged (e.g. the warning for the test config's unpriced model) is not the requests' doing.
        var atStart = _host.Logs.Entries.Count;
        foreach (var method in new[] { HttpMethod.Get, HttpMethod.Delete, HttpMethod.Post })
        {
            using var response = await SendAsync(method, method == HttpMethod.Delete ? "/admin/v1/keys/abc" : "/admin/v1/keys", "wrong-key");
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("invalid_admin_key", await ErrorCodeAsync(response));
        }

        Assert.DoesNotContain(_host.Logs.Entries.Skip(atStart), e => e.Level > LogLevel.Information);
    }

    [Fact]
    public async Task AdminKeys_RepeatedWrongKeys_ThrottledWith429AndRetryAfter_EvenForTheRightKey()
    {
        for (var i = 0; i < 10; i++)
        {
            using var wrong = await SendAsync(HttpMethod.Get, "/admin/v1/keys", $"wrong-{i}");
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        using var throttled = await SendAsync(HttpMethod.Get, "/admin/v1/keys", "wrong-again");
        using var right = await SendAsync(HttpMethod.Get, "/admin/v1/keys", AdminKey);

        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        Assert.Equal("admin_attempts_exceeded", await ErrorCodeAsync(throttled));
        Assert.InRange(throttled.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 60);
        Assert.Equal(HttpStatusCode.TooManyRequests, right.StatusCode);
    }

    [Fact]
    public async Task Dashboard_RepeatedWrongSignIns_ThrottledWith429()
    {
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 12; i++)
        {
            using var response = await _host.Http.PostAsync("/dashboard", new FormUrlEncodedContent([new("key", $"guess-{i}")]));
            statuses.Add(response.StatusCode);
        }

        Assert.All(statuses.Take(10), s => Assert.Equal(HttpStatusCode.Unauthorized, s));
        Assert.All(statuses.Skip(10), s => Assert.Equal(HttpStatusCode.TooManyRequests, s));
    }

    [Fact]
    public async Task Metrics_WithMetricsAuthAdmin_NeedsTheAdminKey()
    {
        await using var host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s)
            .Replace("  auth: none", $"  auth: keys\n  admin_key_env: {AdminVariable}\n  metrics_auth: admin", StringComparison.Ordinal));

        using var anonymous = await SendAsync(host, HttpMethod.Get, "/metrics", null);
        using var wrong = await SendAsync(host, HttpMethod.Get, "/metrics", "wrong-key");
        using var admin = await SendAsync(host, HttpMethod.Get, "/metrics", AdminKey);

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal("invalid_admin_key", await ErrorCodeAsync(anonymous));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        Assert.Contains("# TYPE", await admin.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_ByDefault_OpenWithoutAKey()
    {
        await using var open = await GatewayHost.StartAsync();

        using var response = await open.Http.GetAsync("/metrics");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public void Config_UnknownMetricsAuth_OneLineNamingTheKey()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("server:\n  metrics_auth: basic\n", "m.yaml"));

        Assert.Equal("m.yaml: server.metrics_auth: 'basic' is not allowed (allowed: open, admin)", error.Message);
    }

    [Fact]
    public void Create_AdminKeyShorterThan32Characters_RefusedAtStartInOneLine()
    {
        const string variable = "MARGINAL_TEST_SHORT_ADMIN_KEY";
        Environment.SetEnvironmentVariable(variable, "a");
        try
        {
            var config = ConfigLoader.Parse($"server:\n  auth: none\n  admin_key_env: {variable}\nstorage:\n  record_usage: false\n", "m.yaml");

            var error = Assert.Throws<ConfigException>(() => MarginalServer.Create(config, urls: "http://127.0.0.1:0"));

            Assert.Equal($"server.admin_key_env: the admin key in ${variable} is 1 characters long; it must be at least 32 (e.g. openssl rand -hex 32)", error.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }
}
