using YamlDotNet.Serialization;

namespace Marginal.Gateway.Pricing;

// What a price book file says. Keys are snake_case in YAML (cached_input, as_of).
// Mutable only so YamlDotNet can fill them; PriceBookLoader validates and turns them into Core's immutable records.

/// <summary>A whole price book file: the shipped pricebook.yaml or a deployment's override.</summary>
public sealed class PriceBookConfig
{
    public Dictionary<string, ModelPriceConfig?> Models { get; set; } = [];
}

/// <summary>One model's catalog facts and prices. Prices are USD per million tokens.</summary>
public sealed class ModelPriceConfig
{
    public string? Provider { get; set; }

    /// <summary>The provider's own id; defaults to the entry's name.</summary>
    public string? Upstream { get; set; }

    public int? ContextWindow { get; set; }

    /// <summary><c>o200k_base</c>, <c>cl100k_base</c> or <c>gguf</c>.</summary>
    public string? Tokenizer { get; set; }

    /// <summary><c>frontier</c>, <c>standard</c> or <c>economy</c>.</summary>
    public string? QualityTier { get; set; }

    /// <summary><c>api</c>, <c>rented</c> or <c>owned</c>.</summary>
    public string? Capacity { get; set; }

    public decimal? Input { get; set; }

    public decimal? CachedInput { get; set; }

    [YamlMember(Alias = "cache_write_5m")]
    public decimal? CacheWrite5m { get; set; }

    [YamlMember(Alias = "cache_write_1h")]
    public decimal? CacheWrite1h { get; set; }

    public decimal? Output { get; set; }

    /// <summary>In (0, 1]; absent means the source lists no batch discount (1).</summary>
    public decimal? BatchMultiplier { get; set; }

    /// <summary>URL or document name the prices were read from.</summary>
    public string? Source { get; set; }

    /// <summary>The date the source states, or the date the prices were read from it: YYYY-MM-DD.</summary>
    public string? AsOf { get; set; }
}
