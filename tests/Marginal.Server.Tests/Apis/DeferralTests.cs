using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Marginal.Core.Ledger;

namespace Marginal.Server.Tests.Apis;

/// <summary>Deferred (batch) requests end to end: gateway → FakeUpstream's OpenAI Batch API → jobs API → ledger.</summary>
public sealed class DeferralTests : IAsyncLifetime
{
    private const string AdminVariable = "MARGINAL_DEFERRAL_TEST_ADMIN_KEY";
    private const string AdminKey = "admin-secret-for-deferral-tests-0123456789";

    /// <summary>Deferral on, flushed every 50 ms; <c>primary</c> serves deferred jobs through its batch API.</summary>
    public static string Yaml(Testing.FakeUpstream primary, Testing.FakeUpstream secondary) =>
        GatewayHost.DefaultYaml(primary, secondary, "deferral:\n  enabled: true\n  flush_interval: 50ms\n  batch_providers: [primary]\n  models: [gpt-solo]");

    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync(Yaml);

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static async Task<HttpResponseMessage> SubmitAsync(HttpClient http, string content, string? deadline = "1h", string model = "gpt-test", string? bearer = null, bool stream = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model, stream, messages = new[] { new { role = "user", content } } }),
        };
        if (deadline is not null)
        {
            request.Headers.TryAddWithoutValidation("x-marginal-deadline", deadline);
        }
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        return await http.SendAsync(request);
    }

    private static async Task<JsonNode> JsonOf(HttpResponseMessage response) => JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

    private static async Task<JsonNode> GetJobAsync(HttpClient http, string id, string? bearer = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/marginal/jobs/{id}");
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await JsonOf(response);
    }

    /// <summary>Polls the job until it reaches one of <paramref name="statuses"/> (bounded: 15 s).</summary>
    private static async Task<JsonNode> WaitForAsync(Func<HttpClient> http, string id, params string[] statuses)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            var job = await GetJobAsync(http(), id);
            if (statuses.Contains(job["status"]!.GetValue<string>()))
            {
                return job;
            }
            await Task.Delay(25, timeout.Token);
        }
    }

    [Fact]
    public async Task Submit_WithDeadlineHeader_QueuesThenCompletesThroughBatchApiAndBillsOnceWithDeferralSaving()
    {
        var accepted = await SubmitAsync(_host.Http, "hello batch world");

        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var job = await JsonOf(accepted);
        var id = job["id"]!.GetValue<string>();
        Assert.StartsWith("job_", id, StringComparison.Ordinal);
        Assert.Equal("marginal.job", job["object"]!.GetValue<string>());
        Assert.Equal("queued", job["status"]!.GetValue<string>());
        Assert.Equal($"/v1/marginal/jobs/{id}", accepted.Headers.Location!.ToString());

        var done = await WaitForAsync(() => _host.Http, id, "completed", "failed", "expired");
        Assert.Equal("completed", done["status"]!.GetValue<string>());
        Assert.Equal("chat.completion", done["response"]!["object"]!.GetValue<string>());
        Assert.Equal("Echo: hello batch world", done["response"]!["choices"]![0]!["message"]!["content"]!.GetValue<string>());

        // The upstream got a JSONL batch over its Files and Batch API, not a chat completion.
        var paths = _host.Primary.Requests.Select(r => r.Path).ToList();
        Assert.Contains("/v1/files", paths);
        Assert.Contains("/v1/batches", paths);
        Assert.DoesNotContain("/v1/chat/completions", paths);
        var created = _host.Primary.Requests.First(r => r.Path == "/v1/batches").Json!;
        Assert.Equal("/v1/chat/completions", created["endpoint"]!.GetValue<string>());
        Assert.Equal("24h", created["completion_window"]!.GetValue<string>());

        // Polling again never bills again: one record, keyed by the job's request id, at the batch price.
        await GetJobAsync(_host.Http, id);
        await Task.Delay(200);
        var records = await _host.Ledger.ReadAsync().ToListAsync();
        var record = Assert.Single(records);
        Assert.Equal(done["request_id"]!.GetValue<string>(), record.Id);
        Assert.Equal("ok", record.Status);
        // 3 prompt words and 4 reply words at test-price (input 2, output 8 per 1M), batch multiplier 0.5.
        var normal = (3 * 2m + 4 * 8m) / 1_000_000m;
        Assert.Equal(normal * 0.5m, record.CostUsd);
        var (lever, saving) = Assert.Single(LeverSavings.Parse(record.Levers));
        Assert.Equal("deferral", lever);
        Assert.Equal(normal - normal * 0.5m, saving);
        Assert.Equal(saving, record.SavingsUsd);
    }

    [Fact]
    public async Task Submit_LineFailsInBatch_JobFailsWithOpenAIErrorAndOneZeroCostRecord()
    {
        var id = (await JsonOf(await SubmitAsync(_host.Http, "please FAIL-THIS-LINE now")))["id"]!.GetValue<string>();

        var done = await WaitForAsync(() => _host.Http, id, "completed", "failed", "expired");

        Assert.Equal("failed", done["status"]!.GetValue<string>());
        var error = done["error"]!;
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal("invalid_value", error["code"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(error["message"]!.GetValue<string>()));
        Assert.Null(done["response"]);
        await Task.Delay(200);
        var record = Assert.Single(await _host.Ledger.ReadAsync().ToListAsync());
        Assert.Equal("invalid_value", record.Status);
        Assert.Equal(0m, record.CostUsd);
    }

    [Fact]
    public async Task Submit_DeadlinePassesWhileBatchRuns_JobExpiresAndBatchIsCancelled()
    {
        _host.Primary.HoldBatches = true;
        var id = (await JsonOf(await SubmitAsync(_host.Http, "too slow", deadline: "1s")))["id"]!.GetValue<string>();

        var done = await WaitForAsync(() => _host.Http, id, "completed", "failed", "expired");

        Assert.Equal("expired", done["status"]!.GetValue<string>());
        Assert.Equal("deadline_exceeded", done["error"]!["code"]!.GetValue<string>());
        // The queue expires the jobs first, then cancels their batch: the cancel may land just after the job reads expired.
        string? status = null;
        for (var i = 0; i < 100 && (status = Assert.Single(_host.Primary.Batches.Values)["status"]!.GetValue<string>()) != "cancelled"; i++)
        {
            await Task.Delay(100);
        }
        Assert.Equal("cancelled", status);
        Assert.Equal(0, await _host.Ledger.CountAsync());
    }

    [Fact]
    public async Task Submit_BatchEndsWithoutTheJobBeforeItsDeadline_SentAgainAndCompletesBilledOnce()
    {
        var id = (await JsonOf(await SubmitAsync(_host.Http, "SKIP-THIS-LINE-ONCE please")))["id"]!.GetValue<string>();

        var done = await WaitForAsync(() => _host.Http, id, "completed", "failed", "expired");

        Assert.Equal("completed", done["status"]!.GetValue<string>());
        Assert.Equal(2, _host.Primary.Batches.Count);
        var record = Assert.Single(await _host.Ledger.ReadAsync().ToListAsync());
        Assert.Equal(done["request_id"]!.GetValue<string>(), record.Id);
    }

    [Fact]
    public async Task Submit_GatewayRestartsWhileBatchRuns_JobSurvivesAndCompletes()
    {
        _host.Primary.HoldBatches = true;
        var id = (await JsonOf(await SubmitAsync(_host.Http, "survive restart")))["id"]!.GetValue<string>();
        await WaitForAsync(() => _host.Http, id, "running");

        await _host.RestartAsync();
        _host.Primary.HoldBatches = false;

        var done = await WaitForAsync(() => _host.Http, id, "completed", "failed", "expired");
        Assert.Equal("completed", done["status"]!.GetValue<string>());
        Assert.Equal("Echo: survive restart", done["response"]!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Single(_host.Primary.Batches);
    }

    [Fact]
    public async Task Submit_ModelWithoutBatchProvider_RunsThroughPipelineAtNormalPrice()
    {
        var id = (await JsonOf(await SubmitAsync(_host.Http, "run me directly", model: "gpt-backup")))["id"]!.GetValue<string>();

        var done = await WaitForAsync(() => _host.Http, id, "completed", "failed", "expired");

        Assert.Equal("completed", done["status"]!.GetValue<string>());
        Assert.Equal("Echo: run me directly", done["response"]!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Contains(_host.Secondary.Requests, r => r.Path == "/v1/chat/completions");
        var record = Assert.Single(await _host.Ledger.ReadAsync().ToListAsync());
        Assert.Equal(done["request_id"]!.GetValue<string>(), record.Id);
        Assert.Equal((3 * 1m + 4 * 4m) / 1_000_000m, record.CostUsd);
        Assert.Equal("deferred", record.Tags);
        Assert.DoesNotContain("deferral", record.Levers, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submit_ModelListedUnderDeferral_IsDeferredWithoutHeader()
    {
        var accepted = await SubmitAsync(_host.Http, "always deferred", deadline: null, model: "gpt-solo");

        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var job = await JsonOf(accepted);
        var window = job["deadline_at"]!.GetValue<long>() - job["created_at"]!.GetValue<long>();
        Assert.InRange(window, 24 * 3600 - 1, 24 * 3600 + 1);
    }

    [Theory]
    [InlineData("tomorrow")]
    [InlineData("2020-01-01T00:00:00Z")]
    [InlineData("-5m")]
    [InlineData("30d")]
    public async Task Submit_BadDeadlineHeader_Returns400NamingIt(string deadline)
    {
        var response = await SubmitAsync(_host.Http, "hello", deadline);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await JsonOf(response))["error"]!;
        Assert.Equal("x-marginal-deadline", error["param"]!.GetValue<string>());
        Assert.Equal("invalid_deadline", error["code"]!.GetValue<string>());
        Assert.Contains(deadline, error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Empty(_host.Primary.Requests);
    }

    [Fact]
    public async Task Submit_StreamedDeferral_Returns400()
    {
        var response = await SubmitAsync(_host.Http, "hello", stream: true);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("stream", (await JsonOf(response))["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task GetJob_UnknownId_Returns404InOpenAIFormat()
    {
        var response = await _host.Http.GetAsync("/v1/marginal/jobs/job_nope");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("job_not_found", (await JsonOf(response))["error"]!["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Submit_TenantOnAPlan_BatchAnswerCarriesThePlansRevenue()
    {
        var plans = Path.Combine(Directory.CreateTempSubdirectory("marginal-plans-").FullName, "plans.yaml");
        await File.WriteAllTextAsync(plans, "plans:\n  list:\n    prices:\n      gpt-test: { input: 1000, output: 2000 }\ntenants:\n  default: { plan: list }\n");
        await using var host = await GatewayHost.StartAsync((p, s) => Yaml(p, s) + $"\nbilling:\n  plans: {plans}\n");
        var id = (await JsonOf(await SubmitAsync(host.Http, "hello batch world")))["id"]!.GetValue<string>();

        Assert.Equal("completed", (await WaitForAsync(() => host.Http, id, "completed", "failed", "expired"))["status"]!.GetValue<string>());

        // 3 prompt words and 4 reply words at the plan's 1000 and 2000 USD per 1M; the batch discount is the gateway's saving, not the tenant's.
        var record = Assert.Single(await host.Ledger.ReadAsync().ToListAsync());
        Assert.Equal(3 * 0.001m + 4 * 0.002m, record.RevenueUsd);
    }

    [Fact]
    public async Task GetJob_OfAnotherTenant_Returns404()
    {
        Environment.SetEnvironmentVariable(AdminVariable, AdminKey);
        await using var host = await GatewayHost.StartAsync((p, s) => Yaml(p, s)
            .Replace("  auth: none", $"  auth: keys\n  admin_key_env: {AdminVariable}", StringComparison.Ordinal));
        var acme = await CreateKeyAsync(host, "acme");
        var globex = await CreateKeyAsync(host, "globex");
        var id = (await JsonOf(await SubmitAsync(host.Http, "tenant secret", bearer: acme)))["id"]!.GetValue<string>();

        using var other = new HttpRequestMessage(HttpMethod.Get, $"/v1/marginal/jobs/{id}");
        other.Headers.Authorization = new AuthenticationHeaderValue("Bearer", globex);
        var response = await host.Http.SendAsync(other);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("job_not_found", (await JsonOf(response))["error"]!["code"]!.GetValue<string>());
        var own = await GetJobAsync(host.Http, id, acme);
        Assert.Equal(id, own["id"]!.GetValue<string>());
    }

    private static async Task<string> CreateKeyAsync(GatewayHost host, string tenant)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/v1/keys") { Content = JsonContent.Create(new { tenant }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        var response = await host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await JsonOf(response))["key"]!.GetValue<string>();
    }

    [Fact]
    public async Task Submit_DeadlineHeaderWithDeferralOff_Returns400()
    {
        await using var host = await GatewayHost.StartAsync();

        var response = await SubmitAsync(host.Http, "hello");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await JsonOf(response))["error"]!;
        Assert.Equal("deferral_disabled", error["code"]!.GetValue<string>());
        Assert.Equal("x-marginal-deadline", error["param"]!.GetValue<string>());
    }
}
