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

    private Task<GatewayHost> StartAsync() => GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, $"""
        storage:
          kind: postgres
          connection_string_env: {_env}
          spool: {_spool}
        """));

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
        var error = await Assert.ThrowsAsync<Marginal.Gateway.Configuration.ConfigException>(StartAsync);

        Assert.Contains(_env, error.Message, StringComparison.Ordinal);
        Assert.Contains("storage.connection_string_env", error.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(_env, null);
        Directory.Delete(_spool, recursive: true);
    }
}
