using Marginal.Core.Ledger;
using Marginal.Core.Routing;
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
    public void Restore_StoredExamplesAndFeedbackRows_LabelsAsTheFirstTellingFeedbackSaid()
    {
        var feedback = new RouteFeedback();
        RouteExample[] examples = [new("req_1", "auto", TestVectors.Unit(0)), new("req_2", "auto", TestVectors.Unit(1)), new("req_3", "auto", TestVectors.Unit(2))];
        var at = DateTimeOffset.UnixEpoch;
        Feedback[] rows =
        [
            new("req_1", at, "t", null, "ticket_opened"), // says nothing: the next row labels it
            new("req_1", at, "t", 0.1, null),
            new("req_1", at, "t", 0.9, null), // later feedback does not relabel, as when it arrived live
            new("req_2", at, "t", null, "resolved"),
        ];

        Assert.Equal(2, feedback.Restore(examples, rows));

        // req_1 needed the strong model: (0.2 + 1) / 2; req_2 did not: (0.2 + 0) / 2; req_3 has no feedback.
        Assert.Equal(0.6, feedback.Adjust("auto", TestVectors.Unit(0), 0.2), 6);
        Assert.Equal(0.1, feedback.Adjust("auto", TestVectors.Unit(1), 0.2), 6);
        Assert.Equal(0.2, feedback.Adjust("auto", TestVectors.Unit(2), 0.2), 6);
        Assert.Equal(2, feedback.Count("auto"));
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

    [Fact]
    public void Add_SameRequestHeardTwice_HeldOnce()
    {
        var feedback = new RouteFeedback();
        var example = new RouteExample("req_1", "auto", TestVectors.Unit(0));

        Assert.True(feedback.Add(example, 1f));
        Assert.False(feedback.Add(example with { Embedding = TestVectors.Unit(0) }, 1f));

        // One neighbour, not two: (0.2 + 1) / 2.
        Assert.Equal(1, feedback.Count("auto"));
        Assert.Equal(0.6, feedback.Adjust("auto", TestVectors.Unit(0), 0.2), 6);
        Assert.True(feedback.Holds("req_1"));
        Assert.False(feedback.Holds("req_2"));
    }

    [Fact]
    public void Add_LabelFromElsewhereForARememberedRequest_LaterFeedbackHereLearnsNothingMore()
    {
        var feedback = new RouteFeedback();
        feedback.Remember("req_1", "auto", TestVectors.Unit(0));

        Assert.True(feedback.Add(new RouteExample("req_1", "auto", TestVectors.Unit(0)), 1f));

        Assert.False(feedback.Learn("req_1", score: 0.9, outcome: null));
        Assert.Equal(1, feedback.Count("auto"));
    }

    [Fact]
    public void Remember_WithSharedPending_KeepsTheRequestThere()
    {
        var shared = new KeptRequests();
        var feedback = new RouteFeedback(shared: shared);

        feedback.Remember("req_1", "auto", TestVectors.Unit(0));
        feedback.Remember("req_1", "auto", TestVectors.Unit(1));

        var kept = Assert.Single(shared.Kept);
        Assert.Equal(("req_1", "auto"), (kept.RequestId, kept.Alias));
        Assert.Equal(TestVectors.Unit(0), kept.Embedding);
    }

    private sealed class KeptRequests : ISharedRoutePending
    {
        public List<RouteExample> Kept { get; } = [];

        public void Keep(RouteExample request) => Kept.Add(request);
    }
}
