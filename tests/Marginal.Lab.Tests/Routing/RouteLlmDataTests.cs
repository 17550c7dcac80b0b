using Marginal.Gateway.Routing.Learning;
using Marginal.Lab.Routing;

namespace Marginal.Lab.Tests.Routing;

public sealed class RouteLlmDataTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("marginal-routing-data-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void Load_QuotedMultilineFieldsAndContaminatedPrompts_ReadsRowsAndLeavesContaminatedOut()
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "mmlu_anatomy.csv"),
            "prompt,weak,strong\n\"A \"\"quoted\"\" question\nA. yes\nB. no\nAnswer:\",True,False\nplain,False,True\nleaked,True,True\n");
        File.WriteAllText(Path.Combine(_dir.FullName, "contaminated_prompts.jsonl"), "{\"eval_prompt\":\"leaked\",\"train_prompt\":\"x\"}\n");

        var examples = RouteLlmData.Load(_dir.FullName, "weak", "strong");

        Assert.Equal(2, examples.Count);
        Assert.Equal(new RoutingExample("A \"quoted\" question\nA. yes\nB. no\nAnswer:", "anatomy", true, false), examples[0]);
        Assert.Equal(1f, examples[1].Gain);
    }

    [Fact]
    public void Load_MissingColumn_NamesFileAndColumn()
    {
        var file = Path.Combine(_dir.FullName, "x.csv");
        File.WriteAllText(file, "prompt,weak\nq,True\n");

        var error = Assert.Throws<RoutingDataException>(() => RouteLlmData.Load(file, "weak", "strong"));

        Assert.Equal($"{file}: column 'strong' is missing (columns: prompt, weak)", error.Message);
    }
}
