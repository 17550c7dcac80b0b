namespace Marginal.Cli.Tests.Commands;

/// <summary><c>marginal models</c> as a user runs it: the sample's models all priced, an unknown one called unpriced.</summary>
public sealed class ModelsCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("marginal-models-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string SampleConfig() =>
        Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(MarginalProcess.SampleScenario("x")))!, "marginal.yaml");

    [Fact]
    public async Task Models_SampleConfig_EveryModelPricedByTheShippedBook()
    {
        var (exit, stdout, stderr) = await MarginalProcess.RunAsync(_directory, "models", "--config", SampleConfig());

        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain("  unpriced", stdout, StringComparison.Ordinal);
        Assert.EndsWith(" models, 0 unpriced", stdout.Trim(), StringComparison.Ordinal);
        Assert.Contains("claude-sonnet-4-5: input 3 / output 15 USD per 1M", stdout, StringComparison.Ordinal);
        Assert.Contains("text-embedding-3-small: input 0.02", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Models_ModelWithoutEntry_ListedUnpriced()
    {
        var config = Path.Combine(_directory, "marginal.yaml");
        await File.WriteAllTextAsync(config, "providers:\n  box:\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\nmodels:\n  house-model:\n    provider: box\n  gpt-4o:\n    provider: box\n");

        var (exit, stdout, _) = await MarginalProcess.RunAsync(_directory, "models", "--config", config);

        Assert.Equal(0, exit);
        Assert.Contains(stdout.Split('\n'), l => l.StartsWith("house-model", StringComparison.Ordinal) && l.TrimEnd().EndsWith("unpriced", StringComparison.Ordinal));
        Assert.Contains(stdout.Split('\n'), l => l.StartsWith("gpt-4o ", StringComparison.Ordinal) && l.Contains("gpt-4o: input", StringComparison.Ordinal));
        Assert.EndsWith("2 models, 1 unpriced", stdout.Trim(), StringComparison.Ordinal);
    }
}
