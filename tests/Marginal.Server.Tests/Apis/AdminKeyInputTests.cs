using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// <c>POST /admin/v1/keys</c> fails closed: a tenant name outside the rule, a <c>models</c> value that is not a list of
/// names, or a key that would be expired when made is 400 in OpenAI's error format, and no key is stored.
/// </summary>
public sealed class AdminKeyInputTests : IAsyncLifetime
{
    private const string AdminVariable = "MARGINAL_TEST_ADMIN_KEY_INPUT";
    private const string AdminKey = "admin-key-for-input-tests-0123456789abcdef";
    private GatewayHost _host = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(AdminVariable, AdminKey);
        _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s)
            .Replace("  auth: none", $"  auth: keys\n  admin_key_env: {AdminVariable}", StringComparison.Ordinal)
            // Room for the megabyte tenant name, so the name rule answers rather than the body limit.
            .Replace("max_request_body_bytes: 65536", "max_request_body_bytes: 4194304", StringComparison.Ordinal));
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<HttpResponseMessage> CreateAsync(string json)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/v1/keys") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        return await _host.Http.SendAsync(request);
    }

    private async Task AssertRefusedAsync(string json, string param)
    {
        using var response = await CreateAsync(json);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal(param, (string?)error["param"]);
        Assert.Equal("invalid_request_error", (string?)error["type"]);
        Assert.Empty(await ((Core.Tenancy.IKeyStore)_host.Ledger).ListKeysAsync());
    }

    [Theory]
    [InlineData("\"gpt-test\"")]
    [InlineData("true")]
    [InlineData("0")]
    [InlineData("{}")]
    [InlineData("null")]
    [InlineData("[null]")]
    [InlineData("[\"\"]")]
    [InlineData("[\"gpt-test\", 5]")]
    public async Task Create_ModelsNotAListOfNames_Is400NamingModels(string models) =>
        await AssertRefusedAsync($$"""{"tenant":"acme","models":{{models}}}""", "models");

    [Theory]
    [InlineData("2020-01-01T00:00:00Z")]
    [InlineData("2000-01-01")]
    public async Task Create_AlreadyExpired_Is400NamingExpires(string expires) =>
        await AssertRefusedAsync($$"""{"tenant":"acme","expires":"{{expires}}"}""", "expires");

    [Theory]
    [InlineData("acme:prod")]
    [InlineData("acme\\u0000")]
    [InlineData("acme\\u202Eorp")]
    [InlineData("-acme")]
    [InlineData("=cmd")]
    [InlineData("acme prod")]
    public async Task Create_TenantOutsideTheRule_Is400NamingTenant(string tenant) =>
        await AssertRefusedAsync($$"""{"tenant":"{{tenant}}"}""", "tenant");

    [Fact]
    public async Task Create_MegabyteTenant_Is400NamingTenant() =>
        await AssertRefusedAsync($$"""{"tenant":"{{new string('a', 1_000_000)}}"}""", "tenant");

    /// <summary>
    /// Seeded random tenants (separators, control, bidirectional and non-ASCII characters among valid ones) and
    /// <c>models</c> values: a key is created exactly when both are valid, anything else is 400, never a 5xx.
    /// </summary>
    [Theory]
    [InlineData(7)]
    [InlineData(11)]
    public async Task Create_RandomTenantsAndModels_CreatedOnlyWhenBothValid(int seed)
    {
        var random = new Random(seed);
        const string pool = "aZ09._-:% \0\u202E\u200Bé東=+@\t\n\"\\";
        string[] models = ["[]", "[\"gpt-test\"]", "[\"a\",\"b\"]", "\"gpt-test\"", "true", "0", "{}", "null", "[null]", "[\"\"]", "[\" \"]", "[[]]"];
        for (var i = 0; i < 60; i++)
        {
            var tenant = new string([.. Enumerable.Range(0, random.Next(0, 12)).Select(_ => pool[random.Next(pool.Length)])]);
            var modelsJson = models[random.Next(models.Length)];
            var body = new JsonObject { ["tenant"] = tenant, ["models"] = JsonNode.Parse(modelsJson) }.ToJsonString();

            using var response = await CreateAsync(body);

            var valid = Core.Tenancy.TenantNames.IsValid(tenant) && modelsJson.StartsWith('[') && !modelsJson.Contains("null", StringComparison.Ordinal)
                && !modelsJson.Contains("\"\"", StringComparison.Ordinal) && !modelsJson.Contains("\" \"", StringComparison.Ordinal) && modelsJson != "[[]]";
            Assert.True(response.StatusCode == (valid ? HttpStatusCode.Created : HttpStatusCode.BadRequest),
                $"tenant {JsonValue.Create(tenant).ToJsonString()}, models {modelsJson}: {(int)response.StatusCode}");
        }
    }

    [Fact]
    public async Task Create_ListedModelsAndFutureExpiry_IsCreated()
    {
        using var response = await CreateAsync("""{"tenant":"acme.prod_2-x","expires":"2999-01-01T00:00:00Z","models":["gpt-test"]}""");

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var key = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("acme.prod_2-x", (string?)key["tenant"]);
        Assert.Equal("gpt-test", (string?)key["models"]![0]);
    }
}
