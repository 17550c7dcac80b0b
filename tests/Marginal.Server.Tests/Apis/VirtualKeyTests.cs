using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Apis;

public sealed class VirtualKeyTests : IAsyncLifetime
{
    private const string AdminVariable = "MARGINAL_TEST_ADMIN_KEY";
    private const string AdminKey = "admin-secret-for-tests-0123456789abcdef";
    private GatewayHost _host = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(AdminVariable, AdminKey);
        _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s)
            .Replace("  auth: none", $"  auth: keys\n  admin_key_env: {AdminVariable}", StringComparison.Ordinal));
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<JsonNode> CreateKeyAsync(object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/v1/keys") { Content = JsonContent.Create(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        var response = await _host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    private async Task<HttpResponseMessage> ChatAsync(string? authorization, string model = "gpt-test")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model, messages = new[] { new { role = "user", content = "hello there" } } }),
        };
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }
        return await _host.Http.SendAsync(request);
    }

    private static async Task<string> ErrorCodeAsync(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["code"]!.GetValue<string>();

    [Fact]
    public async Task Chat_WithCreatedKey_IsAttributedToItsTenantInTheLedger()
    {
        var created = await CreateKeyAsync(new { tenant = "acme" });
        var client = new OpenAIClient(new ApiKeyCredential(created["key"]!.GetValue<string>()), new OpenAIClientOptions
        {
            Endpoint = new Uri(_host.BaseUrl, "/v1"),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        }).GetChatClient("gpt-test");

        var result = await client.CompleteChatAsync([new UserChatMessage("hello there")]);

        var id = result.GetRawResponse().Headers.TryGetValue("x-marginal-request-id", out var value) ? value : null;
        var record = await _host.Ledger.FindAsync(id!);
        Assert.Equal("acme", record!.Tenant);
        Assert.Equal(created["id"]!.GetValue<string>(), record.KeyId);
    }

    [Fact]
    public async Task Feedback_OnAnotherTenantsRequest_IsAnsweredAsUnknown()
    {
        var acme = (await CreateKeyAsync(new { tenant = "acme" }))["key"]!.GetValue<string>();
        var globex = (await CreateKeyAsync(new { tenant = "globex" }))["key"]!.GetValue<string>();
        var id = (await ChatAsync($"Bearer {acme}")).Headers.GetValues("x-marginal-request-id").Single();

        async Task<HttpStatusCode> FeedbackAsync(string key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/feedback") { Content = JsonContent.Create(new { request_id = id, outcome = "success" }) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            return (await _host.Http.SendAsync(request)).StatusCode;
        }

        Assert.Equal(HttpStatusCode.NotFound, await FeedbackAsync(globex));
        Assert.Equal(HttpStatusCode.OK, await FeedbackAsync(acme));
        Assert.Equal("acme", Assert.Single(await _host.Ledger.ReadFeedbackAsync().ToListAsync()).Tenant);
    }

    [Theory]
    [InlineData(null, "missing_api_key")]
    [InlineData("Bearer sk-not-ours", "invalid_api_key")]
    [InlineData("Bearer mk-0123456789ab-wrongsecret", "invalid_api_key")]
    public async Task Chat_WithoutValidKey_Returns401(string? authorization, string code)
    {
        var response = await ChatAsync(authorization);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(code, await ErrorCodeAsync(response));
    }

    [Fact]
    public async Task Chat_WithRightIdButWrongSecret_Returns401()
    {
        var created = await CreateKeyAsync(new { tenant = "acme" });

        var response = await ChatAsync($"Bearer mk-{created["id"]}-{new string('A', 43)}");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Chat_WithRevokedKey_Returns401()
    {
        var created = await CreateKeyAsync(new { tenant = "acme" });
        var key = created["key"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync($"Bearer {key}")).StatusCode);
        using var revoke = new HttpRequestMessage(HttpMethod.Delete, $"/admin/v1/keys/{created["id"]}");
        revoke.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        Assert.Equal(HttpStatusCode.OK, (await _host.Http.SendAsync(revoke)).StatusCode);

        var response = await ChatAsync($"Bearer {key}");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("revoked", (await response.Content.ReadAsStringAsync()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_WithExpiredKey_Returns401()
    {
        // A key that has expired since it was made (the admin API refuses to make one already expired).
        var (key, text) = Core.Tenancy.KeyIssuer.Issue("acme", new DateTimeOffset(2019, 12, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await ((Core.Tenancy.IKeyStore)_host.Ledger).AddKeyAsync(key);

        var response = await ChatAsync($"Bearer {text}");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("expired_api_key", await ErrorCodeAsync(response));
    }

    [Fact]
    public async Task Chat_ModelOutsideKeysList_Returns403()
    {
        var created = await CreateKeyAsync(new { tenant = "acme", models = new[] { "gpt-solo" } });

        var response = await ChatAsync($"Bearer {created["key"]}", "gpt-test");

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("model_not_allowed", await ErrorCodeAsync(response));
    }

    [Fact]
    public async Task AdminList_ShowsKeysWithoutSecrets()
    {
        var created = await CreateKeyAsync(new { tenant = "globex" });
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/v1/keys");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);

        var body = await (await _host.Http.SendAsync(request)).Content.ReadAsStringAsync();

        Assert.Contains(created["id"]!.GetValue<string>(), body, StringComparison.Ordinal);
        Assert.DoesNotContain(created["key"]!.GetValue<string>(), body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("mk-0123456789ab-notadmin")]
    public async Task Admin_WithoutAdminKey_Returns401(string? bearer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/v1/keys");
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        var response = await _host.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task AdminCreate_WithoutTenant_Returns400NamingIt()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/v1/keys") { Content = JsonContent.Create(new { models = new[] { "x" } }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);

        var response = await _host.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("tenant", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task Models_KeyWithModelList_ListsAndFindsOnlyThoseModels()
    {
        var created = await CreateKeyAsync(new { tenant = "acme", models = new[] { "gpt-solo" } });
        var client = new OpenAIClient(new ApiKeyCredential(created["key"]!.GetValue<string>()), new OpenAIClientOptions
        {
            Endpoint = new Uri(_host.BaseUrl, "/v1"),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        }).GetOpenAIModelClient();

        var listed = (await client.GetModelsAsync()).Value.Select(m => m.Id).ToArray();
        var hidden = await Assert.ThrowsAsync<ClientResultException>(() => client.GetModelAsync("gpt-test"));

        Assert.Equal(["gpt-solo"], listed);
        Assert.Equal(404, hidden.Status);
        Assert.Equal("gpt-solo", (await client.GetModelAsync("gpt-solo")).Value.Id);
    }

    [Fact]
    public async Task Healthz_WithoutKey_StaysOpen()
    {
        var response = await _host.Http.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
