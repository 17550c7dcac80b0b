using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Testing;

namespace Marginal.Cli.Tests.Commands;

/// <summary>Runs the real <c>marginal</c> executable as a child process, as a user would.</summary>
public sealed class ServeCommandTests
{
    [Fact]
    public async Task Version_PrintsVersion()
    {
        var (exit, stdout, _) = await MarginalProcess.RunAsync("--version");

        Assert.Equal(0, exit);
        Assert.StartsWith("0.1.0", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_ListsServe()
    {
        var (exit, stdout, _) = await MarginalProcess.RunAsync("--help");

        Assert.Equal(0, exit);
        Assert.Contains("serve", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_BadConfig_OneLineAndExitCode2()
    {
        var path = Path.Combine(Path.GetTempPath(), $"marginal-bad-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, "providers:\n  p:\n    kind: cohere\n");
        try
        {
            var (exit, _, stderr) = await MarginalProcess.RunAsync("serve", "--config", path);

            Assert.Equal(2, exit);
            Assert.Equal($"{path}: providers.p.kind: 'cohere' is not allowed (allowed: openai, anthropic, local)", stderr.Trim());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Serve_MissingConfigFile_ExitCode2()
    {
        var (exit, _, stderr) = await MarginalProcess.RunAsync("serve", "--config", "/nonexistent/marginal.yaml");

        Assert.Equal(2, exit);
        Assert.StartsWith("/nonexistent/marginal.yaml: cannot read the file", stderr.Trim(), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_PortTaken_ExitCode1WithOneLine()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var (exit, _, stderr) = await MarginalProcess.RunAsync("serve", "--urls", $"http://127.0.0.1:{port}");

        Assert.Equal(1, exit);
        Assert.StartsWith("marginal serve: cannot listen:", stderr.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_WithConfig_ServesChatCompletionsUntilStopped()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var port = FreePort();
        var path = Path.Combine(Path.GetTempPath(), $"marginal-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, $"providers:\n  fake:\n    kind: openai\n    base_url: {upstream.OpenAIBaseUrl}\nmodels:\n  small:\n    provider: fake\n");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { MarginalProcess.Path, "serve", "--config", path, "--urls", $"http://127.0.0.1:{port}" })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        try
        {
            await WaitReadyAsync(http);

            var response = await http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"small","messages":[{"role":"user","content":"ping"}]}""", Encoding.UTF8, "application/json"));

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            Assert.Equal("Echo: ping", body["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            File.Delete(path);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitReadyAsync(HttpClient http)
    {
        for (var i = 0; i < 300; i++)
        {
            try
            {
                if ((await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        Assert.Fail("marginal serve did not become ready in 30 s");
    }
}
