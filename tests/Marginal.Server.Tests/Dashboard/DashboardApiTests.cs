using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Dashboard;

public sealed class DashboardApiTests : IAsyncLifetime
{
    private const string AdminVariable = "MARGINAL_TEST_DASHBOARD_KEY";
    private const string AdminKey = "dashboard-secret-for-tests-0123456789";
    private GatewayHost _host = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(AdminVariable, AdminKey);
        _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s)
            .Replace("  auth: none", $"  auth: none\n  admin_key_env: {AdminVariable}", StringComparison.Ordinal));
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<HttpResponseMessage> GetAsync(string path, string? bearer = null, string? cookie = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }
        // No redirects followed and no cookie jar, so each step of the sign-in is visible.
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = _host.BaseUrl };
        return await http.SendAsync(request);
    }

    [Fact]
    public async Task Data_WithoutAdminKey_Is401InOpenAIErrorFormat()
    {
        var response = await GetAsync("/dashboard/data");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal(("invalid_request_error", "invalid_admin_key"), (error["type"]!.GetValue<string>(), error["code"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Data_WrongAdminKey_Is401()
    {
        var response = await GetAsync("/dashboard/data", bearer: "not-the-key");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Page_WithoutAdminKey_Is401WithSignInForm()
    {
        var response = await GetAsync("/dashboard");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("name=\"key\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }

    private async Task<HttpResponseMessage> SignInAsync(string key)
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = _host.BaseUrl };
        return await http.PostAsync("/dashboard", new FormUrlEncodedContent([new("key", key)]));
    }

    [Fact]
    public async Task SignIn_WrongKey_Is401WithoutCookie()
    {
        using var response = await SignInAsync("not-the-key");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.False(response.Headers.Contains("Set-Cookie"));
    }

    [Fact]
    public async Task Page_KeyInQuery_DoesNotSignIn()
    {
        // A key in a URL would end up in access logs and history; only the posted form signs in.
        using var response = await GetAsync($"/dashboard?key={AdminKey}");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.False(response.Headers.Contains("Set-Cookie"));
    }

    [Fact]
    public async Task SignIn_PostedKey_SetsHttpOnlyStrictCookieThatOpensThePage()
    {
        using var first = await SignInAsync(AdminKey);
        Assert.Equal(HttpStatusCode.SeeOther, first.StatusCode);
        var setCookie = first.Headers.GetValues("Set-Cookie").Single();
        Assert.Contains("httponly", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(AdminKey, setCookie, StringComparison.Ordinal);

        var page = await GetAsync("/dashboard", cookie: setCookie.Split(';')[0]);

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", page.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("no-referrer", page.Headers.GetValues("Referrer-Policy").Single());
        Assert.Contains("/dashboard/chart.js", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Data_AfterRequestsThroughSdk_TotalsEqualTheLedger()
    {
        var chat = _host.OpenAI.GetChatClient("gpt-test");
        await chat.CompleteChatAsync([new UserChatMessage("hello there")]);
        await chat.CompleteChatAsync([new UserChatMessage("and again, a little longer")]);
        // The ledger writer flushes in the background; wait until both records are stored.
        for (var i = 0; i < 100 && await _host.Ledger.CountAsync() < 2; i++)
        {
            await Task.Delay(50);
        }
        var records = await _host.Ledger.ReadAsync().ToListAsync();

        var response = await GetAsync("/dashboard/data?by=provider", bearer: AdminKey);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var total = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["total"]!;
        Assert.Equal(2, total["requests"]!.GetValue<long>());
        Assert.Equal(records.Sum(r => r.CostUsd!.Value), total["cost_usd"]!.GetValue<decimal>());
        Assert.Equal(records.Sum(r => r.InputTokens), total["input_tokens"]!.GetValue<long>());
        // no pricing plan yet: revenue is null ("no plan"), not 0
        Assert.Null(total["revenue_usd"]);
    }

    [Fact]
    public async Task Data_UnknownGrouping_Is400NamingTheParameter()
    {
        var response = await GetAsync("/dashboard/data?by=colour", bearer: AdminKey);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("by", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["param"]!.GetValue<string>());
    }
}
