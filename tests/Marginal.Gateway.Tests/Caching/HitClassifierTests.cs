using Marginal.Gateway.Caching;

namespace Marginal.Gateway.Tests.Caching;

public sealed class HitClassifierTests
{
    [Fact]
    public void FeaturesOf_TwoPrompts_OverlapLengthAndChecksAsHandComputed()
    {
        var features = HitClassifier.FeaturesOf("Is Paris big?", "Is Rome big", 0.8f);

        // Words {is, paris, big} and {is, rome, big}: 2 shared of 4. Lengths 13 and 11. Same numbers and negation;
        // the capitalised names differ.
        Assert.Equal([0.8f, 0.5, 11 / 13.0, 1, 1, 0], features);
    }

    [Fact]
    public void Train_SeparableBySimilarity_ScoresCorrectCandidatesHigher()
    {
        var examples = new List<(double[], bool)>();
        for (var i = 0; i < 40; i++)
        {
            var similarity = 0.5 + (i / 100.0);
            examples.Add(([similarity, 0.5, 1, 1, 1, 1], similarity >= 0.7));
        }

        var model = HitClassifier.Train(examples);

        Assert.True(model.Probability([0.85, 0.5, 1, 1, 1, 1]) > 0.9);
        Assert.True(model.Probability([0.55, 0.5, 1, 1, 1, 1]) < 0.1);
    }
}
