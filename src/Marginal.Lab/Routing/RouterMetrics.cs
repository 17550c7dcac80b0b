namespace Marginal.Lab.Routing;

/// <summary>One operating point: route every prompt scoring at least <see cref="Threshold"/> to the strong model.</summary>
public readonly record struct CurvePoint(double Threshold, double StrongShare, double Accuracy);

/// <summary>A router's quality over one evaluation set (RouteLLM's metrics, Ong et al. 2024, arXiv:2406.18665).</summary>
public sealed record RouterEvaluation(int Prompts, double WeakAccuracy, double StrongAccuracy, IReadOnlyList<CurvePoint> Curve, double Apgr, double Cpt50, double Cpt80)
{
    /// <summary>The operating point with the smallest strong share reaching <c>weak + x·(strong − weak)</c> accuracy.</summary>
    public CurvePoint CptPoint(double x) => RouterMetrics.CptPoint(this, x);
}

/// <summary>
/// Pure functions over router scores and correctness labels. A router gives each prompt a score; prompts with the highest
/// scores go to the strong model first. Routing the top k of n prompts gives the point (k/n, accuracy), accuracy being the
/// mean correctness of the model each prompt was sent to. Prompts with equal scores cannot be split by a threshold, so
/// points are taken only between distinct scores; the straight line between two points is the expected accuracy when ties
/// are broken at random.
/// <list type="bullet">
/// <item>PGR(point) = (accuracy − weak) / (strong − weak): 0 for the weak model alone, 1 for the strong one.</item>
/// <item>APGR = ∫₀¹ PGR d(share), by the trapezoid rule over the points (a random router scores 0.5).</item>
/// <item>CPT(x) = the smallest strong share whose accuracy reaches weak + x·(strong − weak).</item>
/// </list>
/// </summary>
public static class RouterMetrics
{
    /// <summary>Evaluates <paramref name="scores"/> against the correctness of each prompt under each model.</summary>
    public static RouterEvaluation Evaluate(IReadOnlyList<double> scores, IReadOnlyList<bool> weakCorrect, IReadOnlyList<bool> strongCorrect)
    {
        var n = scores.Count;
        if (n == 0 || weakCorrect.Count != n || strongCorrect.Count != n)
        {
            throw new ArgumentException("scores, weakCorrect and strongCorrect must be non-empty and of one length");
        }
        var weak = weakCorrect.Count(c => c) / (double)n;
        var strong = strongCorrect.Count(c => c) / (double)n;
        var order = Enumerable.Range(0, n).OrderByDescending(i => scores[i]).ToArray();
        var curve = new List<CurvePoint>(n + 1) { new(double.PositiveInfinity, 0, weak) };
        long correct = weakCorrect.Count(c => c);
        for (var k = 0; k < n; k++)
        {
            var i = order[k];
            correct += (strongCorrect[i] ? 1 : 0) - (weakCorrect[i] ? 1 : 0);
            if (k == n - 1 || scores[order[k + 1]] != scores[i])
            {
                curve.Add(new CurvePoint(scores[i], (k + 1) / (double)n, correct / (double)n));
            }
        }
        var gap = strong - weak;
        double area = 0;
        for (var j = 1; j < curve.Count; j++)
        {
            area += (curve[j].StrongShare - curve[j - 1].StrongShare) * (curve[j].Accuracy + curve[j - 1].Accuracy) / 2;
        }
        var apgr = gap == 0 ? double.NaN : (area - weak) / gap;
        var evaluation = new RouterEvaluation(n, weak, strong, curve, apgr, double.NaN, double.NaN);
        return evaluation with { Cpt50 = CptPoint(evaluation, 0.5).StrongShare, Cpt80 = CptPoint(evaluation, 0.8).StrongShare };
    }

    /// <summary>The first point reaching weak + x·(strong − weak); the last point (everything strong) when none does.</summary>
    public static CurvePoint CptPoint(RouterEvaluation evaluation, double x)
    {
        var target = evaluation.WeakAccuracy + x * (evaluation.StrongAccuracy - evaluation.WeakAccuracy);
        foreach (var point in evaluation.Curve)
        {
            // A hair of tolerance: the target is a float sum, the accuracy a count over n.
            if (point.Accuracy >= target - 1e-12)
            {
                return point;
            }
        }
        return evaluation.Curve[^1];
    }

    /// <summary>
    /// The operating point for a target strong share: the last point whose share is at most <paramref name="share"/>
    /// (a threshold between two distinct scores cannot land between them), else the first point that routes anything.
    /// </summary>
    public static CurvePoint SharePoint(RouterEvaluation evaluation, double share)
    {
        var chosen = evaluation.Curve[Math.Min(1, evaluation.Curve.Count - 1)];
        foreach (var point in evaluation.Curve)
        {
            if (point.StrongShare > 0 && point.StrongShare <= share + 1e-12)
            {
                chosen = point;
            }
        }
        return chosen;
    }

    /// <summary>The curve at share steps of <paramref name="step"/> (for printing): the last point at or below each step.</summary>
    public static IReadOnlyList<CurvePoint> Sample(RouterEvaluation evaluation, double step = 0.1)
    {
        var rows = new List<CurvePoint>();
        for (var share = 0.0; share <= 1 + 1e-9; share += step)
        {
            rows.Add(evaluation.Curve.Last(p => p.StrongShare <= share + 1e-9));
        }
        return rows;
    }
}
