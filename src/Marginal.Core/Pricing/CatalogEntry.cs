namespace Marginal.Core.Pricing;

/// <summary>Where a model's capacity comes from, which decides how its cost is computed (DESIGN.md, "Money and tokens").</summary>
public enum CapacityKind
{
    /// <summary>A provider's pay-per-token API: cost is tokens times the price book.</summary>
    Api,
    /// <summary>Capacity rented by the hour or per token from a host: priced from the book like an API.</summary>
    Rented,
    /// <summary>Capacity the operator owns: the book's price is the counterfactual list price, not the cost.</summary>
    Owned,
}

public static class CapacityKindNames
{
    /// <summary>The kind as the price book and the ledger write it: <c>api</c>, <c>rented</c>, <c>owned</c>. No allocation.</summary>
    public static string Name(this CapacityKind kind) => kind switch
    {
        CapacityKind.Api => "api",
        CapacityKind.Rented => "rented",
        _ => "owned",
    };
}

/// <summary>One model in the catalog: what it is, where it runs, how its tokens are counted and what it costs.</summary>
/// <param name="Id">The name the gateway knows the model by; the price book's key.</param>
/// <param name="Provider">Who serves it, e.g. <c>anthropic</c>, <c>deepseek</c>, <c>local</c>.</param>
/// <param name="UpstreamId">The provider's own id for the model.</param>
/// <param name="ContextWindow">Largest prompt plus output the model accepts, in tokens.</param>
/// <param name="TokenizerEncoding"><c>o200k_base</c>, <c>cl100k_base</c> or <c>gguf</c>; used only when the provider reports no usage.</param>
/// <param name="QualityTier"><c>frontier</c>, <c>standard</c> or <c>economy</c>.</param>
/// <param name="Capacity">Where the capacity comes from.</param>
/// <param name="Price">The model's prices and their source.</param>
public sealed record CatalogEntry(
    string Id,
    string Provider,
    string UpstreamId,
    int ContextWindow,
    string TokenizerEncoding,
    string QualityTier,
    CapacityKind Capacity,
    ModelPrice Price);
