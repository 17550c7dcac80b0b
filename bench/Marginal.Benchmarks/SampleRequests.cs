using System.Reflection;

namespace Marginal.Benchmarks;

/// <summary>
/// Request bodies as OpenAI clients send them, from bench/requests/ (embedded, so the load test and the
/// micro-benchmarks use the very same bytes).
/// </summary>
public static class SampleRequests
{
    /// <summary>A system prompt and one user turn: the most common request shape (bench/requests/chat.json).</summary>
    public static readonly byte[] Small = Load("chat.json");

    /// <summary>A ten-message agent conversation with four tools, two rounds of tool calls and streaming on (bench/requests/agent-tools.json).</summary>
    public static readonly byte[] Large = Load("agent-tools.json");

    private static byte[] Load(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"bench/requests/{name} is not embedded in {Assembly.GetExecutingAssembly().GetName().Name}");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
