using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Performance;

/// <summary>A model's architecture as its configuration file states it, with the source and date (Performance/models.yaml).</summary>
public sealed class ModelShape
{
    public int Layers { get; set; }
    public int HiddenSize { get; set; }

    /// <summary>Key-value heads per layer (grouped-query attention).</summary>
    public int KvHeads { get; set; }

    /// <summary>Query heads per layer.</summary>
    public int AttentionHeads { get; set; }

    /// <summary>Width of one attention head.</summary>
    public int HeadDim { get; set; }

    /// <summary>Multi-head latent attention: values cached per layer and token, in place of 2 × KV heads × head size.</summary>
    public int? KvLatentDim { get; set; }

    public double ParametersB { get; set; }

    /// <summary>Parameters used per token, billions; default all of them (a dense model).</summary>
    public double? ActiveParametersB { get; set; }

    /// <summary>Routed experts per MoE layer, and how many each token uses; 0 for a dense model.</summary>
    public int Experts { get; set; }
    public int ActiveExperts { get; set; }

    public string? Source { get; set; }
    public string? AsOf { get; set; }

    /// <summary>KV-cache bytes per token: layers × (2 × KV heads × head size, or the latent width) × bytes per cached value.</summary>
    public double KvBytesPerToken(string kvPrecision) =>
        Layers * (KvLatentDim ?? 2.0 * KvHeads * HeadDim) * PerformanceModel.BytesPerParameter(kvPrecision);

    /// <summary>The performance model's load for requests of <paramref name="inputTokens"/> in and <paramref name="outputTokens"/> out.</summary>
    public ServingLoad Load(string precision, string kvPrecision, double inputTokens, double outputTokens, double cacheHitRate = 0) =>
        new(ParametersB, ActiveParametersB ?? ParametersB, PerformanceModel.BytesPerParameter(precision), KvBytesPerToken(kvPrecision),
            // A sequence holds its input and, on average over its life, half its output.
            inputTokens + outputTokens / 2, outputTokens > 0 ? inputTokens / outputTokens : 0, cacheHitRate)
        {
            Experts = Experts, ActiveExperts = ActiveExperts, InputTokens = inputTokens,
            AttentionFlopsPerContextToken = AttentionFlopsPerContextToken, AttentionPrecision = kvPrecision,
        };

    /// <summary>
    /// 4 × layers × query heads × the width each head multiplies per cached token: the head size under grouped-query
    /// attention; under latent attention the latent width (queries absorbed into the latent space, as DeepSeek serves it).
    /// </summary>
    public double AttentionFlopsPerContextToken => 4.0 * Layers * AttentionHeads * (KvLatentDim ?? HeadDim);
}

/// <summary>The shipped model catalogue (Performance/models.yaml, embedded).</summary>
public static class ModelCatalogue
{
    private static readonly Lazy<IReadOnlyDictionary<string, ModelShape>> Catalogue = new(() =>
    {
        var models = ScenarioLoader.Read<Dictionary<string, ModelShape>>(EmbeddedText.Read("Marginal.Planner.Performance.models.yaml"), "models.yaml");
        var problems = new List<string>();
        foreach (var (name, m) in models)
        {
            if (m.Layers < 1 || m.AttentionHeads < 1 || m.ParametersB <= 0 || (m.KvLatentDim is null && (m.KvHeads < 1 || m.HeadDim < 1)) || m.ActiveParametersB > m.ParametersB
                || (m.Experts > 0 && (m.ActiveExperts < 1 || m.ActiveExperts >= m.Experts)) || string.IsNullOrWhiteSpace(m.Source) || !ScenarioLoader.IsDate(m.AsOf))
            {
                problems.Add($"models.yaml: {name}: needs layers, attention_heads, parameters_b, kv_heads and head_dim (or kv_latent_dim), active_parameters_b ≤ parameters_b, 0 < active_experts < experts, source and as_of");
            }
        }
        return problems.Count == 0 ? models : throw new ScenarioException(problems);
    });

    public static IReadOnlyDictionary<string, ModelShape> Shipped => Catalogue.Value;
}

/// <summary>Text resources embedded in the planner assembly.</summary>
internal static class EmbeddedText
{
    public static string Read(string resource)
    {
        using var stream = typeof(EmbeddedText).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"{resource} is not embedded in the planner assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
