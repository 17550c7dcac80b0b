namespace Marginal.Lab.Routing;

/// <summary>
/// One labelled prompt: whether the weak (cheap) and the strong (expensive) model answered it correctly.
/// <paramref name="Domain"/> groups prompts (an MMLU subject, or the file name) for splits by domain.
/// </summary>
public sealed record RoutingExample(string Prompt, string Domain, bool WeakCorrect, bool StrongCorrect)
{
    /// <summary>
    /// The training target in score space: 1 when only the strong model was right (the strong call paid off),
    /// -1 when only the weak one was, 0 when both agree (the cheap call was good enough, or nothing helps).
    /// </summary>
    public float Gain => (StrongCorrect ? 1f : 0f) - (WeakCorrect ? 1f : 0f);
}
