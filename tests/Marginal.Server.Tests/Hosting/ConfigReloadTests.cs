using System.Net;
using System.Text;
using Microsoft.Extensions.Configuration;

namespace Marginal.Server.Tests.Hosting;

public sealed class ConfigReloadTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync(watch: true);

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<HttpStatusCode> WaitForModelAsync(string model, HttpStatusCode wanted)
    {
        var status = HttpStatusCode.NotFound;
        for (var i = 0; i < 100 && status != wanted; i++)
        {
            status = (await _host.Http.GetAsync($"/v1/models/{model}")).StatusCode;
            if (status != wanted)
            {
                await Task.Delay(100);
            }
        }
        return status;
    }

    [Fact]
    public void Create_AnyConfig_HostWatchesNoFileOfItsContentRoot()
    {
        // The host's own JSON settings are optional and unused; watching them means watching every file below the
        // working directory, the ledger's included. Only marginal.yaml is watched, by ConfigWatcher.
        var files = ((IConfigurationRoot)_host.App.Configuration).Providers.OfType<FileConfigurationProvider>().ToList();

        Assert.NotEmpty(files);
        Assert.All(files, provider => Assert.False(provider.Source.ReloadOnChange, provider.Source.Path));
    }

    [Fact]
    public async Task ConfigFileChanged_NewModelServed()
    {
        var yaml = GatewayHost.DefaultYaml(_host.Primary, _host.Secondary) + "\n  gpt-new:\n    provider: secondary\n    upstream: new-model\n";

        await File.WriteAllTextAsync(_host.ConfigPath, yaml);

        Assert.Equal(HttpStatusCode.OK, await WaitForModelAsync("gpt-new", HttpStatusCode.OK));
        var response = await _host.Http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"gpt-new","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("new-model", _host.Secondary.Requests.Single().Json!["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task ConfigFileBroken_PreviousConfigStays()
    {
        await File.WriteAllTextAsync(_host.ConfigPath, "models:\n  broken:\n    provider: nowhere\n");
        await Task.Delay(1000);
        var yaml = GatewayHost.DefaultYaml(_host.Primary, _host.Secondary) + "\n  gpt-later:\n    provider: primary\n";
        await File.WriteAllTextAsync(_host.ConfigPath, yaml);

        Assert.Equal(HttpStatusCode.OK, await WaitForModelAsync("gpt-later", HttpStatusCode.OK));
        Assert.Equal(HttpStatusCode.NotFound, (await _host.Http.GetAsync("/v1/models/broken")).StatusCode);
    }

    [Fact]
    public async Task ConfigReload_StreamInFlight_FinishesOnOldSnapshot()
    {
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _host.Primary.HoldAfterFirstChunk = hold;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"keep going"}]}""", Encoding.UTF8, "application/json"),
        };
        using var response = await _host.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        // gpt-test disappears from the config while its stream is open.
        await File.WriteAllTextAsync(_host.ConfigPath, GatewayHost.DefaultYaml(_host.Primary, _host.Secondary).Replace("  gpt-test:", "  gpt-renamed:", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, await WaitForModelAsync("gpt-renamed", HttpStatusCode.OK));
        hold.SetResult();
        var events = await SseEvents.ReadAsync(response);

        Assert.Equal("Echo: keep going", SseEvents.Text(events));
        Assert.Equal("[DONE]", events[^1]);
    }
}
