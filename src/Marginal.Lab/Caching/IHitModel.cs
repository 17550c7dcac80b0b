namespace Marginal.Lab.Caching;

/// <summary>
/// A trained second stage over the features of one (query, cached prompt) candidate, evaluated on GPTCache's pairs only
/// (not used by the live cache). Immutable once trained: safe to score from several threads.
/// </summary>
public interface IHitModel
{
    /// <summary>The predicted probability that the candidate answers the query.</summary>
    double Probability(double[] features);
}

/// <summary>Fits a second stage to labelled candidates (features, whether the candidate is the query's own cached prompt).</summary>
public delegate IHitModel HitTrainer(IReadOnlyList<(double[] Features, bool Correct)> examples);
