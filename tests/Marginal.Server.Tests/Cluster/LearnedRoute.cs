using System.ClientModel;
using Marginal.Gateway.Embeddings;
using Marginal.Gateway.Routing;
using Marginal.Gateway.Routing.Learning;
using Microsoft.Extensions.DependencyInjection;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Cluster;

/// <summary>
/// The learned route of the cluster feedback tests: alias <c>learned</c> (strong <c>gpt-test</c>, weak <c>gpt-backup</c>,
/// threshold 0.4) with a one-neighbour kNN that sends <see cref="France"/> to the weak model (score 0) and
/// <see cref="Primes"/> to the strong one.
/// </summary>
internal static class LearnedRoute
{
    public const string France = "What is the capital of France?";
    public const string Primes = "Prove that there are infinitely many primes of the form 4k+3.";

    /// <summary>Writes the router model to <paramref name="path"/>.</summary>
    public static void SaveRouter(string path)
    {
        var vectors = MiniLmEmbeddingGenerator.Shared.Embed([France, Primes]);
        RouterModelFile.Save(path, new KnnScorer(vectors, [0f, 1f], k: 1), new RouterModelFile.Header(0.5, "test"));
    }

    /// <summary>The <c>routes:</c> section naming the router model at <paramref name="routerFile"/>.</summary>
    public static string Yaml(string routerFile) => $"""
        routes:
          learned:
            strong: gpt-test
            weak: gpt-backup
            learned:
              model: {routerFile}
              threshold: 0.4
        """;

    public static async Task<(string Route, string Model, string RequestId)> ChatAsync(GatewayHost node, string text)
    {
        var result = await node.OpenAI.GetChatClient("learned").CompleteChatAsync([new UserChatMessage(text)]);
        return (Header(result, "x-marginal-route"), Header(result, "x-marginal-model"), Header(result, "x-marginal-request-id"));
    }

    /// <summary>Where <paramref name="node"/> sends the France question now: the route reason and the model.</summary>
    public static async Task<(string Route, string Model)> DecisionAsync(GatewayHost node)
    {
        var (route, model, _) = await ChatAsync(node, France);
        return (route, model);
    }

    /// <summary>How many labels <paramref name="node"/> holds for the route.</summary>
    public static int Labels(GatewayHost node) => node.App.Services.GetRequiredService<RouteFeedback>().Count("learned");

    private static string Header<T>(ClientResult<T> result, string name) =>
        result.GetRawResponse().Headers.TryGetValue(name, out var value) ? value! : "";
}
