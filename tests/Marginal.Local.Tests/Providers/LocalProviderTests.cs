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
}
