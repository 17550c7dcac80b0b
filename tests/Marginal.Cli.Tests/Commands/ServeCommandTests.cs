using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Testing;

namespace Marginal.Cli.Tests.Commands;

public sealed class ServeCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("marginal-cli-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Version_PrintsVersion()
    {
        var (exit, stdout, _) = await MarginalProcess.RunAsync(_directory, "--version");

        Assert.Equal(0, exit);
        Assert.StartsWith("0.1.0", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_ListsCommands()
    {
        var (exit, stdout, _) = await MarginalProcess.RunAsync(_directory, "--help");

        Assert.Equal(0, exit);
        Assert.Contains("serve", stdout, StringComparison.Ordinal);
        Assert.Contains("keys", stdout, StringComparison.Ordinal);
        Assert.Contains("report", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_BadConfig_OneLineAndExitCode2()
    {
        var path = Path.Combine(_directory, "bad.yaml");
        await File.WriteAllTextAsync(path, "providers:\n  p:\n    kind: cohere\n");

        var (exit, _, stderr) = await MarginalProcess.RunAsync(_directory, "serve", "--config", path);

        Assert.Equal(2, exit);
        Assert.Equal($"{path}: providers.p.kind: 'cohere' is not allowed (allowed: openai, anthropic, local)", stderr.Trim());
    }

    [Fact]
    public async Task Serve_AdminKeyShorterThan32Characters_OneLineAndExitCode2()
    {
        const string variable = "MARGINAL_TEST_SERVE_SHORT_ADMIN_KEY";
        var path = Path.Combine(_directory, "marginal.yaml");
        await File.WriteAllTextAsync(path, $"server:\n  auth: none\n  admin_key_env: {variable}\n");
        // The child process inherits the variable.
        Environment.SetEnvironmentVariable(variable, "a");
        try
        {
            var (exit, _, stderr) = await MarginalProcess.RunAsync(_directory, "serve", "--config", path);

            Assert.Equal(2, exit);
            Assert.Equal($"server.admin_key_env: the admin key in ${variable} is 1 characters long; it must be at least 32 (e.g. openssl rand -hex 32)", stderr.Trim());
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public async Task Serve_MissingConfigFile_ExitCode2()
    {
        var (exit, _, stderr) = await MarginalProcess.RunAsync(_directory, "serve", "--config", "/nonexistent/marginal.yaml");

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

        var (exit, _, stderr) = await MarginalProcess.RunAsync(_directory, "serve", "--urls", $"http://127.0.0.1:{port}");

        Assert.Equal(1, exit);
        Assert.StartsWith("marginal serve: cannot listen:", stderr.Trim(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_WithConfigAndNoAuth_ServesChatCompletions()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var path = Path.Combine(_directory, "marginal.yaml");
        await File.WriteAllTextAsync(path, $"server:\n  auth: none\nproviders:\n  fake:\n    kind: openai\n    base_url: {upstream.OpenAIBaseUrl}\nmodels:\n  small:\n    provider: fake\n");
        var (process, http) = await MarginalProcess.ServeAsync(_directory, path);
        try
        {
            var response = await http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"small","messages":[{"role":"user","content":"ping"}]}""", Encoding.UTF8, "application/json"));

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            Assert.Equal("Echo: ping", body["choices"]![0]!["message"]!["content"]!.GetValue<string>());
            Assert.True(File.Exists(Path.Combine(_directory, "marginal.db")), "the ledger is created in the working directory");
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            http.Dispose();
        }
    }
}
