using Marginal.Server.Composition;
using System.Net;
using System.Text;
using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;

namespace Marginal.Local.Tests.Providers;

public sealed class LocalProviderTests
{
    [Fact]
    public async Task Post_ModelFileMissing_503NamingTheFileWhileTheGatewayServes()
    {
        const string yaml = """
            server:
              auth: none
            storage:
              record_usage: false
            providers:
              owned:
                kind: local
                path: /nonexistent/missing.gguf
            models:
              ghost:
                provider: owned
            """;
        await using var app = MarginalServer.Create(ConfigLoader.Parse(yaml, "marginal.yaml"), urls: "http://127.0.0.1:0");
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };

        using var response = await http.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"ghost","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("missing.gguf: no such file", body, StringComparison.Ordinal);
        Assert.Contains("provider_not_configured", body, StringComparison.Ordinal);
        await app.StopAsync();
    }

    [Fact]
    public void Construct_CudaBackendWithoutCuda_OneLineErrorNamingTheSetting()
    {
        using var files = new TestModelFiles();

        var error = Assert.Throws<LocalBackendUnavailableException>(() =>
            new LocalChatClient(new LocalModelOptions { ModelPath = files.Path, Backend = LocalBackend.Cuda, Context = 64, MaxBatch = 1 }));

        // This project ships the CPU backend only, so no machine running these tests can load the CUDA build.
        Assert.StartsWith("backend: cuda: llama.cpp found no CUDA device", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public async Task Post_CudaBackendWithoutCuda_503WithTheReasonWhileTheGatewayServes()
    {
        using var files = new TestModelFiles();
        var yaml = $"""
            server:
              auth: none
            storage:
              record_usage: false
            providers:
              gpu:
                kind: local
                path: {files.Path}
                backend: cuda
            models:
              gpu-model:
                provider: gpu
            """;
        await using var gateway = await LocalGateway.StartAsync(yaml);

        using var response = await gateway.Http.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"gpu-model","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        using var health = await gateway.Http.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("backend: cuda: llama.cpp found no CUDA device", body, StringComparison.Ordinal);
        Assert.Contains("provider_not_configured", body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }
}
