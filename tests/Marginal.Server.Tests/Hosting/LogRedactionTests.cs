using Marginal.Server.Composition;
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;
using Marginal.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using OpenAI;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Hosting;

/// <summary>
/// Secrets never reach the logs at any level: the provider's API key, virtual keys (valid and mistyped) and the admin
/// key, through successful, streamed, refused and failing requests, with every category logging at Trace.
/// </summary>
public sealed class LogRedactionTests : IAsyncLifetime
{
    private const string ProviderVariable = "MARGINAL_TEST_REDACTION_PROVIDER_KEY";
    private const string AdminVariable = "MARGINAL_TEST_REDACTION_ADMIN_KEY";
    private const string ProviderKey = "sk-provider-Zq81mPpW3tLx0";
    private const string AdminKey = "admin-Yv62nKrB9sQe4-w7Hc2LmQ0pXz5RtK";

    private readonly RecordingLoggerProvider _logs = new(LogLevel.Trace);
    private FakeUpstream _upstream = null!;
    private WebApplication _app = null!;
    private DirectoryInfo _dir = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(ProviderVariable, ProviderKey);
        Environment.SetEnvironmentVariable(AdminVariable, AdminKey);
        _upstream = await FakeUpstream.StartAsync();
        _dir = Directory.CreateTempSubdirectory("marginal-redaction-");
        var path = Path.Combine(_dir.FullName, "marginal.yaml");
        await File.WriteAllTextAsync(path, $"""
            server:
              auth: keys
              admin_key_env: {AdminVariable}
            storage:
              path: {Path.Combine(_dir.FullName, "ledger.db")}
            cache:
              exact:
                enabled: false
            providers:
              upstream:
                kind: openai
                base_url: {_upstream.OpenAIBaseUrl}
                api_key_env: {ProviderVariable}
                timeout: 1s
            models:
              gpt-test:
                provider: upstream
                upstream: up-model
            """);
        var config = ConfigLoader.Load(path);
        _app = MarginalServer.Create(config, null, "http://127.0.0.1:0", minimumLogLevel: LogLevel.Trace, logging: l =>
        {
            l.AddProvider(_logs);
            // The server quietens ASP.NET Core's per-request lines; here everything speaks.
            l.AddFilter("Microsoft", LogLevel.Trace);
            l.AddFilter("Microsoft.AspNetCore", LogLevel.Trace);
            // Off by default (it costs an Activity per request); its "Request starting" lines carry the URL.
            l.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.Trace);
            l.AddFilter("System", LogLevel.Trace);
        });
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(_app.Urls.First()) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
        await _upstream.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? bearer, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        return await _http.SendAsync(request);
    }

    [Fact]
    public async Task Logs_AtTraceThroughEveryKindOfRequest_NeverHoldASecret()
    {
        using var created = await SendAsync(HttpMethod.Post, "/admin/v1/keys", AdminKey, new { tenant = "acme" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var virtualKey = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["key"]!.GetValue<string>();
        var secret = virtualKey[(virtualKey.LastIndexOf('-') + 1)..];

        var client = new OpenAIClient(new ApiKeyCredential(virtualKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(_http.BaseAddress!, "/v1"),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        }).GetChatClient("gpt-test");
        Assert.NotEmpty((await client.CompleteChatAsync("hello")).Value.Content[0].Text);
        await foreach (var _ in client.CompleteChatStreamingAsync("hello, streamed"))
        {
        }
        // The upstream refuses the provider key, as OpenAI does, then fails in the ways that make the gateway log.
        _upstream.Enqueue(new Fault(FaultKind.Status, Status: 401, Message: "Incorrect API key provided: sk-prov***Lx0."));
        await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync("refused"));
        _upstream.Enqueue(new Fault(FaultKind.ResetMidStream));
        try
        {
            // Whether the SDK throws depends on where the reset lands; what matters here is what the server logged.
            await foreach (var _ in client.CompleteChatStreamingAsync("reset"))
            {
            }
        }
        catch (Exception error) when (error is ClientResultException or IOException or HttpRequestException)
        {
        }
        _upstream.Enqueue(new Fault(FaultKind.Status, Status: 500));
        await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync("broken"));

        using var mistyped = await SendAsync(HttpMethod.Post, "/v1/chat/completions", virtualKey + "x",
            new { model = "gpt-test", messages = new[] { new { role = "user", content = "hi" } } });
        Assert.Equal(HttpStatusCode.Unauthorized, mistyped.StatusCode);
        using var wrongAdmin = await SendAsync(HttpMethod.Get, "/admin/v1/keys", AdminKey + "x");
        Assert.Equal(HttpStatusCode.Unauthorized, wrongAdmin.StatusCode);
        using var list = await SendAsync(HttpMethod.Get, "/admin/v1/keys", AdminKey);
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        using var signIn = await _http.PostAsync("/dashboard", new FormUrlEncodedContent([new("key", AdminKey)]));
        using var data = await SendAsync(HttpMethod.Get, "/dashboard/data", AdminKey);
        Assert.Equal(HttpStatusCode.OK, data.StatusCode);

        using var probe = await _http.GetAsync("/healthz?probe=url-marker-7f3a");

        var entries = _logs.Entries.ToList();
        // The test means something only if the server really logged at the low levels, request URLs included: a key
        // put in a URL (as a dashboard sign-in by query string once did) would be caught here.
        Assert.Contains(entries, e => e.Level <= LogLevel.Debug);
        Assert.Contains(entries, e => e.Message.Contains("url-marker-7f3a", StringComparison.Ordinal));
        foreach (var (name, value) in new[] { ("provider key", ProviderKey), ("admin key", AdminKey), ("virtual key secret", secret) })
        {
            var leak = entries.FirstOrDefault(e => e.Message.Contains(value, StringComparison.Ordinal));
            Assert.True(leak == default, $"the {name} was logged by {leak.Category} at {leak.Level}: {leak.Message}");
        }
    }
}
