using Marginal.Server.Composition;
using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Core.Billing;
using Marginal.Core.Ledger;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Billing;

/// <summary>Plans, budgets and limits through the real server; the test price book is GatewayHost.PriceBookYaml.</summary>
public sealed class BillingTests : IAsyncDisposable
{
    private readonly string _plans = Path.Combine(Directory.CreateTempSubdirectory("marginal-plans-").FullName, "plans.yaml");
    private GatewayHost? _host;

    private async Task<GatewayHost> StartAsync(string plansYaml)
    {
        await File.WriteAllTextAsync(_plans, plansYaml);
        _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, $"billing:\n  plans: {_plans}"));
        return _host;
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }
        Directory.Delete(Path.GetDirectoryName(_plans)!, recursive: true);
    }

    private static Task<HttpResponseMessage> ChatAsync(GatewayHost host, string text = "hello world", int maxTokens = 20) =>
        host.Http.PostAsJsonAsync("/v1/chat/completions", new { model = "gpt-test", max_tokens = maxTokens, messages = new[] { new { role = "user", content = text } } });

    /// <summary>A plan that prices gpt-test per token and the outcome <c>ticket_resolved</c> at 0.5 USD, for the default tenant.</summary>
    private const string ValuePlanYaml = """
        plans:
          value:
            prices:
              gpt-test: { input: 1000, output: 2000 }
            outcomes: { ticket_resolved: 0.5 }
        tenants:
          default: { plan: value }
        """;

    /// <summary>Reports the outcome <c>ticket_resolved</c> for request <paramref name="id"/> through <c>/v1/feedback</c>.</summary>
    private static Task<HttpResponseMessage> ResolvedAsync(GatewayHost host, string id) =>
        host.Http.PostAsync("/v1/feedback", new StringContent($$"""{"request_id":"{{id}}","outcome":"ticket_resolved"}""", Encoding.UTF8, "application/json"));

    private static async Task<JsonNode> ErrorOf(HttpResponseMessage response) => JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;

    [Fact]
    public async Task Budget_200ConcurrentRequests_RecordedCostNeverExceedsIt()
    {
        const decimal Budget = 0.002m;
        var host = await StartAsync($"tenants:\n  default:\n    budget:\n      monthly_usd: {Budget}\n");

        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => ChatAsync(host)));

        var records = await host.Ledger.ReadAsync().ToListAsync();
        var spent = records.Sum(r => r.CostUsd ?? 0);
        Assert.True(spent <= Budget, $"recorded cost {spent} passed the budget {Budget}");
        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.OK);
        var refused = responses.First(r => r.StatusCode == HttpStatusCode.PaymentRequired);
        var error = await ErrorOf(refused);
        Assert.Equal(("insufficient_quota", "budget_exceeded"), (error["type"]!.GetValue<string>(), error["code"]!.GetValue<string>()));
        Assert.True(refused.Headers.Contains("Retry-After"));
        Assert.Equal(responses.Count(r => r.StatusCode == HttpStatusCode.OK), records.Count);
    }

    [Fact]
    public async Task RateLimit_PastRequestsPerMinute_Is429WithHeaders()
    {
        var host = await StartAsync("tenants:\n  default:\n    limits:\n      rpm: 2\n      tpm: 100000\n");

        var first = await ChatAsync(host);
        // Five in a row: even if a minute turns between two of them, at most four fit in two windows of two.
        var responses = new List<HttpResponseMessage>();
        for (var i = 0; i < 4; i++)
        {
            responses.Add(await ChatAsync(host));
        }
        var third = responses.First(r => r.StatusCode != HttpStatusCode.OK);

        Assert.Equal("2", first.Headers.GetValues("x-ratelimit-limit-requests").Single());
        Assert.Equal("1", first.Headers.GetValues("x-ratelimit-remaining-requests").Single());
        Assert.True(first.Headers.Contains("x-ratelimit-remaining-tokens"));
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.Equal("0", third.Headers.GetValues("x-ratelimit-remaining-requests").Single());
        Assert.True(third.Headers.Contains("Retry-After"));
        Assert.Equal("rate_limit_exceeded", (await ErrorOf(third))["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Credits_ExhaustedMidStream_CrossingRequestFinishesAndNextIs402()
    {
        // 1000 USD per 1M tokens: each token costs 0.001 USD, so the first request's ten-odd tokens pass the 0.005 of credit.
        var host = await StartAsync("""
            plans:
              prepaid:
                prepaid: true
                prices:
                  up-model: { input: 1000, output: 1000 }
                  gpt-test: { input: 1000, output: 1000 }
            default_plan: prepaid
            """);
        await ((ICreditStore)host.Ledger).AddCreditAsync(new CreditGrant("cr_test", "default", 0.005m, DateTimeOffset.UtcNow.AddMinutes(-1), null));
        var chat = host.OpenAI.GetChatClient("gpt-test");

        var text = new StringBuilder();
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("one two three four five")]))
        {
            text.Append(string.Concat(update.ContentUpdate.Select(c => c.Text)));
        }
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("again")]));

        Assert.Equal("Echo: one two three four five", text.ToString());
        var crossing = Assert.Single(await host.Ledger.ReadAsync().ToListAsync());
        Assert.True(crossing.RevenueUsd > 0.005m, $"the crossing request was charged {crossing.RevenueUsd}, within the credit");
        Assert.Equal(402, refused.Status);
        Assert.Contains("credits_exhausted", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revenue_OnEveryRecordAndForAPricedOutcome_IsInTheLedger()
    {
        var host = await StartAsync(ValuePlanYaml);

        var response = await ChatAsync(host, "one two three");
        var id = response.Headers.GetValues("x-marginal-request-id").Single();
        var feedback = await ResolvedAsync(host, id);
        await ResolvedAsync(host, id);

        Assert.Equal(HttpStatusCode.OK, feedback.StatusCode);
        var records = await host.Ledger.ReadAsync().ToListAsync();
        // The fake's reported tokens at 1000 and 2000 USD per 1M.
        var usage = records.Single(r => r.Kind == UsageRecordKinds.Usage);
        Assert.Equal(usage.InputTokens * 0.001m + usage.OutputTokens * 0.002m, usage.RevenueUsd);
        Assert.True(usage.RevenueUsd > 0);
        var outcome = records.Single(r => r.Kind == UsageRecordKinds.Outcome);
        Assert.Equal((0.5m, id, "ticket_resolved"), (outcome.RevenueUsd, outcome.Adjusts, outcome.Tags));
    }

    [Fact]
    public async Task Outcome_TaggedOnTheRequestThenReportedAsFeedback_IsBilledOnce()
    {
        var host = await StartAsync(ValuePlanYaml);
        using var tagged = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "gpt-test", messages = new[] { new { role = "user", content = "resolve it" } } }),
        };
        tagged.Headers.Add("x-marginal-tags", "ticket_resolved");
        var response = await host.Http.SendAsync(tagged);
        var id = response.Headers.GetValues("x-marginal-request-id").Single();

        var feedback = await ResolvedAsync(host, id);

        Assert.Equal(HttpStatusCode.OK, feedback.StatusCode);
        var records = await host.Ledger.ReadAsync().ToListAsync();
        var usage = Assert.Single(records);
        var plan = new Marginal.Economics.Plans.PricingPlan("value", new Dictionary<string, Marginal.Economics.Plans.TokenPrice> { ["gpt-test"] = new(1000m, null, 2000m) },
            Outcomes: new Dictionary<string, decimal> { ["ticket_resolved"] = 0.5m });
        var month = DateOnly.FromDateTime(usage.Time.UtcDateTime);
        var invoice = Marginal.Economics.Invoices.InvoiceBuilder.Build(plan, "default", new DateOnly(month.Year, month.Month, 1), records, []);
        var outcome = Assert.Single(invoice.Outcomes);
        Assert.Equal(1, outcome.Count);
    }

    [Fact]
    public async Task Revenue_EmbeddingsRequest_IsPricedUnderThePlan()
    {
        var host = await StartAsync("""
            plans:
              list:
                prices:
                  embed-test: { input: 1000, output: 0 }
            tenants:
              default: { plan: list }
            """);

        var response = await host.Http.PostAsJsonAsync("/v1/embeddings", new { model = "embed-test", input = "one two three" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var record = (await host.Ledger.FindAsync(response.Headers.GetValues("x-marginal-request-id").Single()))!;
        Assert.True(record.InputTokens > 0);
        Assert.Equal(record.InputTokens * 0.001m, record.RevenueUsd);
    }

    [Fact]
    public async Task RateLimit_EmbeddingsPastRequestsPerMinute_Is429()
    {
        var host = await StartAsync("tenants:\n  default:\n    limits:\n      rpm: 1\n");

        var responses = new List<HttpResponseMessage>();
        for (var i = 0; i < 3; i++)
        {
            responses.Add(await host.Http.PostAsJsonAsync("/v1/embeddings", new { model = "embed-test", input = "one two three" }));
        }

        Assert.Equal(HttpStatusCode.OK, responses[0].StatusCode);
        var refused = responses.First(r => r.StatusCode != HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("rate_limit_exceeded", (await ErrorOf(refused))["code"]!.GetValue<string>());
        Assert.Equal(responses.Count(r => r.StatusCode == HttpStatusCode.OK), (await host.Ledger.ReadAsync().ToListAsync()).Count);
    }

    [Fact]
    public async Task FreeTier_PastTheAllowance_Is402AndTheCrossingRequestWasServed()
    {
        var host = await StartAsync("""
            plans:
              free:
                free: { tokens: 3, after: refuse }
            default_plan: free
            """);

        var crossing = await ChatAsync(host, "one two three");
        var refused = await ChatAsync(host, "one two three");

        Assert.Equal(HttpStatusCode.OK, crossing.StatusCode);
        Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);
        Assert.Equal("free_tier_exhausted", (await ErrorOf(refused))["code"]!.GetValue<string>());
        Assert.Equal(0m, Assert.Single(await host.Ledger.ReadAsync().ToListAsync()).RevenueUsd);
    }

    [Fact]
    public async Task Budget_CallRepeatedForAKeyWhoseAnswerIsGone_CountsAsSpend()
    {
        // Each call costs 2 prompt tokens at 2/M + 3 output tokens ("Echo: hello world") at 8/M = 0.000028 USD; a
        // 10-token request reserves 0.000098. With replay off, the second call under the key goes upstream again: not
        // billed, but paid for. Spent 0.000056 + 0.000098 > 0.00014 refuses the third; counting 0.000028 would admit it.
        await File.WriteAllTextAsync(_plans, "tenants:\n  default:\n    budget:\n      daily_usd: 0.00014\n");
        var host = _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, $"billing:\n  plans: {_plans}\nidempotency: {{ replay: false }}"));
        async Task<HttpResponseMessage> KeyedAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = JsonContent.Create(new { model = "gpt-test", max_tokens = 10, messages = new[] { new { role = "user", content = "hello world" } } }),
            };
            request.Headers.Add("Idempotency-Key", "order-1");
            return await host.Http.SendAsync(request);
        }

        Assert.Equal(HttpStatusCode.OK, (await KeyedAsync()).StatusCode);
        var repeated = await KeyedAsync();
        var third = await ChatAsync(host, "hello world", maxTokens: 10);

        Assert.Equal(HttpStatusCode.OK, repeated.StatusCode);
        Assert.Equal(0.000056m, (await host.Ledger.ReadAsync().ToListAsync()).Sum(r => r.CostUsd ?? 0));
        Assert.Equal(HttpStatusCode.PaymentRequired, third.StatusCode);
    }

    [Fact]
    public async Task Budget_AfterRestart_StartsFromTheLedgersSpend()
    {
        var host = await StartAsync("tenants:\n  default:\n    budget:\n      daily_usd: 0.00011\n");
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(host, "hello world", maxTokens: 10)).StatusCode);
        var config = Marginal.Gateway.Configuration.ConfigLoader.Load(host.ConfigPath);
        config.Server.Auth = "none";
        config.Storage.Path = Path.Combine(Path.GetDirectoryName(host.ConfigPath)!, "ledger.db");
        await host.App.StopAsync();

        await using var restarted = Marginal.Server.Composition.MarginalServer.Create(config, urls: "http://127.0.0.1:0");
        await restarted.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(restarted.Urls.First()) };
        var spent = (await host.Ledger.ReadAsync().ToListAsync()).Sum(r => r.CostUsd ?? 0);
        // A fresh counter admits a 10-token request (it reserves 0.000098: 9 prompt tokens at 2/M and 10 out at 8/M); after the first one's spend it does not.
        var response = await http.PostAsJsonAsync("/v1/chat/completions", new { model = "gpt-test", max_tokens = 10, messages = new[] { new { role = "user", content = "hello world" } } });
        await restarted.StopAsync();

        Assert.True(spent > 0);
        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
    }
}
