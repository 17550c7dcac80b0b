using System.Globalization;
using System.Text;

namespace Marginal.Cli.Tests.Commands;

public sealed class RouterCommandTests
{
    [Theory]
    [InlineData(new[] { "router", "eval" }, "marginal router eval: --data PATH is required (a RouteLLM CSV file or folder)")]
    [InlineData(new[] { "router", "eval", "--data", "/nonexistent/routing" }, "marginal router eval: /nonexistent/routing: no such file or folder (give a RouteLLM CSV file or a folder of them)")]
    [InlineData(new[] { "router", "eval", "--data", "x", "--holdout", "2" }, "marginal router eval: --holdout: must be from 0 to 0.9, got 2")]
    [InlineData(new[] { "router", "eval", "--data", "x", "--split", "month" }, "marginal router eval: --split: 'month' is not allowed (allowed: question, domain)")]
    [InlineData(new[] { "router", "train", "--data", "x" }, "marginal router train: --out FILE is required")]
    [InlineData(new[] { "router", "calibrate", "--data", "x", "--strong-share", "0.5" }, "marginal router calibrate: --model FILE is required (a router file from router train)")]
    [InlineData(new[] { "router", "train", "--data", "x", "--out", "m.json", "--method", "svm" }, "marginal router train: --method: 'svm' is not allowed (allowed: knn, logistic, blend, mf)")]
    public async Task Router_BadArguments_OneLineAndExitCode2(string[] args, string expected)
    {
        var (exit, _, stderr) = await MarginalProcess.RunAsync(Path.GetTempPath(), args);

        Assert.Equal(2, exit);
        Assert.Equal(expected, stderr.Trim());
    }

    [Fact]
    public async Task RouterEval_MfFileWithShortProjectionRow_OneLineAndExitCode2()
    {
        var directory = Directory.CreateTempSubdirectory("marginal-router-cli-");
        try
        {
            var data = Path.Combine(directory.FullName, "toy.csv");
            await File.WriteAllTextAsync(data, "prompt,weak,strong\n\"What is 2 + 2?\",True,True\n\"Prove Fermat's last theorem.\",False,True\n");
            var model = Path.Combine(directory.FullName, "mf.json");
            await File.WriteAllTextAsync(model, """
                {"format":"marginal-router","version":1,"embedding":"all-MiniLM-L6-v2","dimensions":384,"suggested_threshold":0.5,
                 "trained_on":"x","kind":"mf","length":{"weight":1,"mean":0,"scale":1},"projection":[[0.5,0.25]],
                 "projection_bias":[0],"strong":[1],"weak":[-1],"classifier":[1]}
                """);

            var (exit, stdout, stderr) = await MarginalProcess.RunAsync(directory.FullName, "router", "eval", "--data", data, "--model", model, "--weak", "weak", "--strong", "strong");

            Assert.Equal(2, exit);
            Assert.Equal("", stdout);
            Assert.Equal($"marginal router eval: {model}: 'projection' must be an array of 1 arrays of 385 numbers", stderr.Trim().Split('\n')[^1]);
            Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task RouterTrainThenEval_SmallDataset_WritesModelAndPrintsMetrics()
    {
        var directory = Directory.CreateTempSubdirectory("marginal-router-cli-");
        try
        {
            // Arithmetic: only the strong model is right. Geography: both are. A router should send arithmetic first.
            var csv = new StringBuilder("prompt,weak,strong\n");
            for (var i = 0; i < 20; i++)
            {
                csv.Append(CultureInfo.InvariantCulture, $"\"What is {17 + i} times {23 + i}, step by step?\",False,True\n");
                csv.Append(CultureInfo.InvariantCulture, $"\"Which country has city number {i} on the map of Europe?\",True,True\n");
            }
            var data = Path.Combine(directory.FullName, "toy.csv");
            await File.WriteAllTextAsync(data, csv.ToString());
            var model = Path.Combine(directory.FullName, "router.json");

            var trained = await MarginalProcess.RunAsync(directory.FullName, "router", "train", "--data", data, "--out", model, "--weak", "weak", "--strong", "strong", "--holdout", "0.25");
            var evaluated = await MarginalProcess.RunAsync(directory.FullName, "router", "eval", "--data", data, "--model", model, "--weak", "weak", "--strong", "strong", "--holdout", "0.25");

            Assert.Equal(0, trained.ExitCode);
            Assert.StartsWith($"marginal: wrote {model} (logistic, 30 prompts", trained.Stdout, StringComparison.Ordinal);
            Assert.Equal(0, evaluated.ExitCode);
            Assert.Contains("held-out 25% by question, seed 42): 10 prompts", evaluated.Stdout, StringComparison.Ordinal);
            // Separable data, so a good router sends every arithmetic prompt first: accuracy climbs in a straight line from
            // the weak model's (the geography share g) to 100% at share 1 − g, then stays there. Its APGR is (1 + g) / 2.
            var lines = evaluated.Stdout.Split('\n');
            var weak = double.Parse(lines.Single(l => l.StartsWith("weak ", StringComparison.Ordinal)).Split(' ')[3].TrimEnd('%', ';'), CultureInfo.InvariantCulture) / 100;
            var apgr = double.Parse(lines.Single(l => l.StartsWith("logistic (router.json) ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[2], CultureInfo.InvariantCulture);
            Assert.Equal((1 + weak) / 2, apgr, 3);

            // Half the prompts are arithmetic: a threshold for a 50% strong share sends exactly those, reaching 100%.
            var calibrated = await MarginalProcess.RunAsync(directory.FullName, "router", "calibrate", "--data", data, "--model", model, "--weak", "weak", "--strong", "strong", "--strong-share", "0.5");
            Assert.True(calibrated.ExitCode == 0, calibrated.Stderr);
            Assert.Contains("strong share 50.00% (target 50.00%) on", calibrated.Stdout, StringComparison.Ordinal);
            Assert.Contains("accuracy 100.00% (weak alone 50.00%, strong alone 100.00%; PGR 1.000", calibrated.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
