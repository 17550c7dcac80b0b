using Marginal.Gateway.Routing;

namespace Marginal.Gateway.Tests.Routing;

public sealed class RouteFeedbackTests
{
    [Fact]
    public void Learn_BadScoreOnRememberedRequest_RaisesScoreOfSimilarPrompts()
    {
        var feedback = new RouteFeedback();
        feedback.Remember("req_1", "auto", TestVectors.Unit(0));

        Assert.True(feedback.Learn("req_1", score: 0.1, outcome: null));

        // (0.2 + 1·1) / (1 + 1) = 0.6 for the same prompt; an unrelated prompt keeps its score.
        Assert.Equal(0.6, feedback.Adjust("auto", TestVectors.Unit(0), 0.2), 6);
        Assert.Equal(0.2, feedback.Adjust("auto", TestVectors.Unit(1), 0.2), 6);
        Assert.Equal(0.2, feedback.Adjust("other", TestVectors.Unit(0), 0.2), 6);
    }

    [Fact]
    public void Learn_UnknownRequestOrNeutralOutcome_LearnsNothing()
    {
        var feedback = new RouteFeedback();
        feedback.Remember("req_1", "auto", TestVectors.Unit(0));

        Assert.False(feedback.Learn("req_2", score: 0, outcome: null));
        Assert.False(feedback.Learn("req_1", score: null, outcome: "ticket_opened"));
        Assert.True(feedback.Learn("req_1", score: null, outcome: "resolved"));
        Assert.Equal(0.1, feedback.Adjust("auto", TestVectors.Unit(0), 0.2), 6);
    }

    [Fact]
    public void Remember_PastCapacity_ForgetsTheOldestRequest()
    {
        var feedback = new RouteFeedback(capacity: 2);
        feedback.Remember("a", "auto", TestVectors.Unit(0));
        feedback.Remember("b", "auto", TestVectors.Unit(1));
        feedback.Remember("c", "auto", TestVectors.Unit(2));

        Assert.False(feedback.Learn("a", 0, null));
        Assert.True(feedback.Learn("c", 0, null));
    }
}
