using Marginal.Local.Scheduling;

namespace Marginal.Local.Tests.Scheduling;

public sealed class StopSequenceFilterTests
{
    [Fact]
    public void Push_StopSplitAcrossPieces_HoldsOnlyThePossibleStartAndCutsBeforeIt()
    {
        var filter = new StopSequenceFilter(["END"]);

        Assert.Equal("hello ", filter.Push("hello E"));
        Assert.Equal("", filter.Push("N"));
        Assert.Equal("", filter.Push("D and more"));
        Assert.True(filter.Stopped);
        Assert.Equal("", filter.Push("later text"));
        Assert.Equal("", filter.Flush());
    }

    [Fact]
    public void Push_PossibleStartThatDoesNotComplete_IsReleasedWithTheNextPiece()
    {
        var filter = new StopSequenceFilter(["END"]);

        Assert.Equal("a", filter.Push("aEN"));
        Assert.Equal("ENx", filter.Push("x"));
        Assert.False(filter.Stopped);
    }

    [Fact]
    public void Flush_GenerationEndsWhileHolding_ReturnsTheHeldText()
    {
        var filter = new StopSequenceFilter(["\n\n", "###"]);

        Assert.Equal("answer", filter.Push("answer#"));
        Assert.Equal("#", filter.Flush());
    }

    [Fact]
    public void Push_SeveralStops_CutsAtTheEarliest()
    {
        var filter = new StopSequenceFilter(["zz", "b"]);

        Assert.Equal("a", filter.Push("abczz"));
    }
}
