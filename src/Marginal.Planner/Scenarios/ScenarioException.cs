namespace Marginal.Planner.Scenarios;

/// <summary>
/// A scenario file that cannot be planned. <see cref="Problems"/> holds one line per problem, each naming the file,
/// the path inside it and what is allowed; <see cref="Exception.Message"/> is those lines joined, ready to print.
/// </summary>
public sealed class ScenarioException : Exception
{
    public ScenarioException()
    {
        Problems = [];
    }

    public ScenarioException(string message)
        : this([message])
    {
    }

    public ScenarioException(string message, Exception innerException)
        : base(message, innerException)
    {
        Problems = [message];
    }

    public ScenarioException(IReadOnlyList<string> problems)
        : base(string.Join(Environment.NewLine, problems))
    {
        Problems = problems;
    }

    public IReadOnlyList<string> Problems { get; }
}
