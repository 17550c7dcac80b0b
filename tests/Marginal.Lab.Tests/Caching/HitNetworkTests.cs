using Marginal.Lab.Caching;

namespace Marginal.Lab.Tests.Caching;

public sealed class HitNetworkTests
{
    /// <summary>XOR of two inputs, each corner 10 times: no line separates it.</summary>
    private static readonly List<(double[] Features, bool Correct)> Xor =
    [
        .. Enumerable.Range(0, 10).SelectMany(_ => new (double[], bool)[] { ([0, 0], false), ([1, 1], false), ([0, 1], true), ([1, 0], true) }),
    ];

    [Fact]
    public void Train_Xor_SeparatesEveryCorner()
    {
        var network = HitNetwork.Train(Xor);

        Assert.True(network.Probability([0, 1]) > 0.9);
        Assert.True(network.Probability([1, 0]) > 0.9);
        Assert.True(network.Probability([0, 0]) < 0.1);
        Assert.True(network.Probability([1, 1]) < 0.1);
    }

    [Fact]
    public void Train_XorWithTheLinearModel_CannotSeparateIt()
    {
        // The contrast that makes the XOR test mean something: the logistic model sees no signal in either input.
        var linear = HitClassifier.Train(Xor);

        Assert.False(linear.Probability([0, 1]) > 0.5 && linear.Probability([1, 0]) > 0.5 && linear.Probability([0, 0]) < 0.5 && linear.Probability([1, 1]) < 0.5);
    }

    [Fact]
    public void Train_SameSeedTwice_SameModel()
    {
        var first = HitNetwork.Train(Xor, hidden: 3, steps: 50, seed: 7);
        var second = HitNetwork.Train(Xor, hidden: 3, steps: 50, seed: 7);
        var other = HitNetwork.Train(Xor, hidden: 3, steps: 50, seed: 8);

        Assert.Equal(first.Probability([0, 1]), second.Probability([0, 1]));
        Assert.NotEqual(first.Probability([0, 1]), other.Probability([0, 1]));
    }
}
