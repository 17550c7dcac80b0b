using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Marginal.Core.Deferral;
using Marginal.Gateway.Embeddings;
using Marginal.Gateway.Routing.Learning;
using Marginal.Storage.Postgres;
using Marginal.Storage.Spool;
using Marginal.Testing.Services;
using Microsoft.Extensions.DependencyInjection;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Hosting;

/// <summary>The gateway over PostgreSQL (<c>storage: kind: postgres</c>), through real HTTP and the OpenAI SDK.</summary>
public sealed class ClusterStorageTests : IDisposable
{
    private readonly string _spool = Directory.CreateTempSubdirectory("marginal-spool-").FullName;
    private readonly string _env = $"MARGINAL_TEST_LEDGER_{Guid.NewGuid():N}";
    private const string AdminVariable = "MARGINAL_TEST_CLUSTER_ADMIN_KEY";

    private Task<GatewayHost> StartAsync(string extra = "", string server = "") => GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, $"""
        storage:
          kind: postgres
          connection_string_env: {_env}
          spool: {_spool}
        {extra}
        """).Replace("  auth: none", "  auth: none" + server, StringComparison.Ordinal));

    [Fact]
    public async Task DeferredJob_OnPostgres_CompletesAndIsKeptInTheSharedDatabase()
    {
        var database = await (await PostgresServer.Shared).CreateDatabaseAsync();
        Environment.SetEnvironmentVariable(_env, database);
        await using var host = await StartAsync("deferral:\n  enabled: true\n  flush_interval: 50ms\n  batch_providers: [primary]");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "gpt-test", messages = new[] { new { role = "user", content = "hello batch" } } }),
        };
        request.Headers.TryAddWithoutValidation("x-marginal-deadline", "1h");

        var accepted = await host.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var id = JsonNode.Parse(await accepted.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        await using var shared = await PostgresStore.OpenAsync(database);
        DeferredJob? job = null;
        for (var i = 0; i < 150 && job?.Status is not (JobStatus.Completed or JobStatus.Failed); i++)
        {
            await Task.Delay(100);
            job = await shared.FindJobAsync(id);
        }
        Assert.Equal(JobStatus.Completed, job?.Status);
        var record = Assert.Single(await shared.ReadAsync().ToListAsync());
        Assert.Equal(job!.RequestId, record.Id);
    }

    [Fact]
    public async Task DashboardData_OnPostgres_CountsEveryRequestFromTheRollups()
    {
        Environment.SetEnvironmentVariable(_env, await (await PostgresServer.Shared).CreateDatabaseAsync());
        Environment.SetEnvironmentVariable(AdminVariable, "cluster-dashboard-key-0123456789abcdef");
        await using var host = await StartAsync(server: $"\n  admin_key_env: {AdminVariable}");
        var chat = host.OpenAI.GetChatClient("gpt-test");
        await chat.CompleteChatAsync([new UserChatMessage("one")]);
        await chat.CompleteChatAsync([new UserChatMessage("two")]);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/dashboard/data");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "cluster-dashboard-key-0123456789abcdef");

        var response = await host.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var total = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["total"]!;
        var records = await host.Ledger.ReadAsync().ToListAsync();
        Assert.Equal(2, total["requests"]!.GetValue<long>());
        Assert.Equal(records.Sum(r => r.CostUsd!.Value), total["cost_usd"]!.GetValue<decimal>());
    }

    [Fact]
    public async Task Chat_PostgresStoppedMidTraffic_AnswersSucceedAndEveryRequestIsRecordedOnce()
    {
        await using var server = await PostgresServer.StartAsync();
        Environment.SetEnvironmentVariable(_env, await server.CreateDatabaseAsync());
        await using var host = await StartAsync();
        var chat = host.OpenAI.GetChatClient("gpt-test");
        var ids = new List<string>();
        async Task Send(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var result = await chat.CompleteChatAsync([new UserChatMessage($"hello {ids.Count}")]);
                ids.Add(result.GetRawResponse().Headers.TryGetValue("x-marginal-request-id", out var id) ? id! : throw new InvalidOperationException("no request id"));
            }
        }

        await Send(20);
        await server.StopAsync();
        await Send(20);
        var spooled = host.App.Services.GetRequiredService<Marginal.Storage.IMarginalStore>() as SpooledLedgerStore;
        Assert.True(spooled!.PrimaryDown);
        await server.StartAgainAsync();
        for (var i = 0; i < 100 && (spooled.PrimaryDown || await spooled.SpooledCountAsync() > 0); i++)
        {
            await Task.Delay(100);
        }

        Assert.Equal(40, await host.Ledger.CountAsync());
        foreach (var id in ids)
        {
            Assert.Equal("gpt-test", (await host.Ledger.FindAsync(id))?.RequestedModel);
        }
    }

    [Fact]
    public async Task Start_ConnectionStringVariableUnset_FailsNamingTheVariable()
    {
        var error = await Assert.ThrowsAsync<Marginal.Gateway.Configuration.ConfigException>(() => StartAsync());

        Assert.Contains(_env, error.Message, StringComparison.Ordinal);
        Assert.Contains("storage.connection_string_env", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Feedback_OnPostgresThenServerRestarted_DecisionStillReflectsIt()
    {
        const string france = "What is the capital of France?";
        var routerFile = Path.Combine(_spool, "router.json");
        // One neighbour per side: the France question is fine on the weak model, the other needs the strong one.
        var vectors = MiniLmEmbeddingGenerator.Shared.Embed([france, "Prove that there are infinitely many primes of the form 4k+3."]);
        RouterModelFile.Save(routerFile, new KnnScorer(vectors, [0f, 1f], k: 1), new RouterModelFile.Header(0.5, "test"));
        Environment.SetEnvironmentVariable(_env, await (await PostgresServer.Shared).CreateDatabaseAsync());
        await using var host = await StartAsync($"routes:\n  learned:\n    strong: gpt-test\n    weak: gpt-backup\n    learned:\n      model: {routerFile}\n      threshold: 0.4");
        var chat = host.OpenAI.GetChatClient("learned");
        var first = await chat.CompleteChatAsync([new UserChatMessage(france)]);
        Assert.True(first.GetRawResponse().Headers.TryGetValue("x-marginal-model", out var weak));
        Assert.Equal("gpt-backup", weak);
        first.GetRawResponse().Headers.TryGetValue("x-marginal-request-id", out var id);
        (await host.Http.PostAsJsonAsync("/v1/feedback", new { request_id = id, score = 0.0 })).EnsureSuccessStatusCode();

        await host.RestartAsync();
        var second = await chat.CompleteChatAsync([new UserChatMessage(france)]);

        // The label came back from PostgreSQL's route_examples and its feedback row: (0 + 1·1) / (1 + 1) = 0.5 > 0.4.
        second.GetRawResponse().Headers.TryGetValue("x-marginal-route", out var route);
        second.GetRawResponse().Headers.TryGetValue("x-marginal-model", out var served);
        Assert.Equal(("learned:0.5", "gpt-test"), (route, served));
    }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(_env, null);
        Directory.Delete(_spool, recursive: true);
    }
}
