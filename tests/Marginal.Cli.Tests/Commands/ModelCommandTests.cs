namespace Marginal.Cli.Tests.Commands;

/// <summary><c>marginal model make-test</c> and <c>quantize</c> through the real executable.</summary>
public sealed class ModelCommandTests
{
    [Theory]
    [InlineData(new[] { "model", "make-test" }, "marginal model make-test: --out FILE is required")]
    [InlineData(new[] { "model", "make-test", "--out" }, "marginal model make-test: Required argument missing for option: '--out'.")]
    [InlineData(new[] { "model", "make-test", "--out", "x.gguf", "--size", "huge" }, "marginal model make-test: --size: 'huge' is not allowed (allowed: tiny, small, medium)")]
    [InlineData(new[] { "model", "make-test", "--out", "x.gguf", "extra" }, "marginal model make-test: unexpected argument 'extra'")]
    [InlineData(new[] { "model", "quantize", "--out", "y.gguf", "--type", "q8_0" }, "marginal model quantize: --in FILE is required")]
    [InlineData(new[] { "model", "quantize", "--in", "/nonexistent/x.gguf", "--out", "y.gguf", "--type", "q8_0" }, "marginal model quantize: --in: no file at /nonexistent/x.gguf")]
    public async Task Model_BadArguments_OneLineAndExitCode2(string[] args, string expected)
    {
        var (exit, _, stderr) = await MarginalProcess.RunAsync(Path.GetTempPath(), args);

        Assert.Equal(2, exit);
        Assert.Equal(expected, stderr.Trim());
    }

    [Fact]
    public async Task MakeTestThenQuantize_Tiny_WritesGgufAndASmallerQuantizedCopy()
    {
        var directory = Directory.CreateTempSubdirectory("marginal-cli-model-");
        try
        {
            var model = Path.Combine(directory.FullName, "tiny.gguf");
            var quantized = Path.Combine(directory.FullName, "tiny-q4_0.gguf");

            var made = await MarginalProcess.RunAsync(directory.FullName, "model", "make-test", "--out", model, "--size", "tiny");
            var badType = await MarginalProcess.RunAsync(directory.FullName, "model", "quantize", "--in", model, "--out", quantized, "--type", "q3_x");
            var done = await MarginalProcess.RunAsync(directory.FullName, "model", "quantize", "--in", model, "--out", quantized, "--type", "q4_0");

            Assert.Equal(0, made.ExitCode);
            Assert.Equal("GGUF", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(model).AsSpan(0, 4)));
            Assert.Equal(2, badType.ExitCode);
            Assert.Equal("marginal model quantize: --type: 'q3_x' is not allowed (allowed: q8_0, q4_0, q4_k_m)", badType.Stderr.Trim());
            Assert.Equal(0, done.ExitCode);
            Assert.True(new FileInfo(quantized).Length < new FileInfo(model).Length / 2);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
