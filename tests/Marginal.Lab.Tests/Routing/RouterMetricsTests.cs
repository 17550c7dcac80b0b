using Marginal.Lab.Routing;

namespace Marginal.Lab.Tests.Routing;

public sealed class RouterMetricsTests
{
    // Four prompts, scored 0.9, 0.7, 0.4, 0.1 (routed to strong in that order).
    // weak correct:   F  T  F  T  → weak accuracy 0.5
    // strong correct: T  T  T  F  → strong accuracy 0.75
    // Accuracy after routing the top k to strong: k=0 0.5, k=1 0.75, k=2 0.75, k=3 1.0, k=4 0.75.
    // Area (trapezoids of width 0.25): (0.5+0.75 + 0.75+0.75 + 0.75+1.0 + 1.0+0.75)/2 × 0.25 = 0.78125.
    // APGR = (0.78125 − 0.5) / 0.25 = 1.125 (above 1: the router finds the prompt only the weak model gets right). CPT(50%): target 0.625 → first reached at share 0.25.
    // CPT(80%): target 0.7 → share 0.25 as well.
    private static readonly double[] Scores = [0.9, 0.7, 0.4, 0.1];
    private static readonly bool[] Weak = [false, true, false, true];
    private static readonly bool[] Strong = [true, true, true, false];

    [Fact]
    public void Evaluate_HandComputedCase_GivesCurveApgrAndCpt()
    {
        var evaluation = RouterMetrics.Evaluate(Scores, Weak, Strong);

        Assert.Equal(0.5, evaluation.WeakAccuracy);
        Assert.Equal(0.75, evaluation.StrongAccuracy);
        Assert.Equal([0.5, 0.75, 0.75, 1.0, 0.75], evaluation.Curve.Select(p => p.Accuracy));
        Assert.Equal([0, 0.25, 0.5, 0.75, 1.0], evaluation.Curve.Select(p => p.StrongShare));
        Assert.Equal(1.125, evaluation.Apgr, 12);
        Assert.Equal(0.25, evaluation.Cpt50);
        Assert.Equal(0.25, evaluation.Cpt80);
        Assert.Equal(0.9, evaluation.CptPoint(0.5).Threshold);
    }

    [Fact]
    public void Evaluate_CptAboveReachableShare_TakesTheFirstPointThatReachesIt()
    {
        // Reverse the scores: the best prompt to upgrade goes last. Accuracy: 0.5, 0.25, 0.5, 0.5, 0.75.
        var evaluation = RouterMetrics.Evaluate([.. Scores.Select(s => 1 - s)], Weak, Strong);

        Assert.Equal([0.5, 0.25, 0.5, 0.5, 0.75], evaluation.Curve.Select(p => p.Accuracy));
        Assert.Equal(1.0, evaluation.Cpt80);
        // Area: (0.75 + 0.75 + 1.0 + 1.25)/2 × 0.25 = 0.46875 → APGR (0.46875 − 0.5)/0.25 = −0.125.
        Assert.Equal(-0.125, evaluation.Apgr, 12);
    }

    [Fact]
    public void Evaluate_TiedScores_AreOnePointSoTiesCountAsRandom()
    {
        // All scores equal: the only points are "none" and "all"; the line between is a random router's: APGR 0.5.
        var evaluation = RouterMetrics.Evaluate([0.3, 0.3, 0.3, 0.3], Weak, Strong);

        Assert.Equal(2, evaluation.Curve.Count);
        Assert.Equal(0.5, evaluation.Apgr, 12);
    }
}
