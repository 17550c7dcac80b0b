using Marginal.Testing;

namespace Marginal.Cli.Tests;

/// <summary>
/// A working directory with a FakeUpstream and a <c>marginal.yaml</c> that serves its one model as
/// <c>deepseek-chat</c> (priced by the shipped book), for tests that run the real executable against it.
/// </summary>
public abstract class UpstreamWorkspace(string auth, bool recordRequests = true) : IAsyncLifetime
{
    /// <summary>The working directory the executable runs in; deleted afterwards.</summary>
    protected string WorkDir { get; } = Directory.CreateTempSubdirectory("marginal-cli-").FullName;

    protected FakeUpstream Upstream { get; private set; } = null!;

    protected string ConfigPath => Path.Combine(WorkDir, "marginal.yaml");

    public async Task InitializeAsync()
    {
        Upstream = await FakeUpstream.StartAsync(record: recordRequests);
        await File.WriteAllTextAsync(ConfigPath, $"""
            server:
              auth: {auth}
            providers:
              fake:
                kind: openai
                base_url: {Upstream.OpenAIBaseUrl}
            models:
              deepseek-chat:
                provider: fake
            """);
    }

    public async Task DisposeAsync()
    {
        await Upstream.DisposeAsync();
        Directory.Delete(WorkDir, recursive: true);
    }
}
