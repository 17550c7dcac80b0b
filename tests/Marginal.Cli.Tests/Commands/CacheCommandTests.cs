namespace Marginal.Cli.Tests.Commands;

public sealed class CacheCommandTests
{
    [Theory]
    [InlineData(new[] { "cache", "eval" }, "marginal cache eval: --data FILE is required")]
    [InlineData(new[] { "cache", "eval", "--data", "x.json", "--only", "lexical" }, "marginal cache eval: --only: 'lexical' is not allowed (allowed: alignment, kfold)")]
    public async Task CacheEval_BadArguments_OneLineAndExitCode2(string[] args, string expected)
    {
        var (exit, _, stderr) = await MarginalProcess.RunAsync(Path.GetTempPath(), args);

        Assert.Equal(2, exit);
        Assert.Equal(expected, stderr.Trim());
    }
}
