namespace Marginal.Gateway.Configuration;

/// <summary>The <c>cache:</c> section: the exact and semantic response caches and per-route choices.</summary>
public sealed class CacheConfig
{
    public ExactCacheConfig Exact { get; set; } = new();
    public SemanticCacheConfig Semantic { get; set; } = new();

    /// <summary>Per requested model or route alias: what may be cached for it.</summary>
    public Dictionary<string, CacheRouteConfig> Routes { get; set; } = [];
}

/// <summary>Exact cache: an identical request (model, messages, every output-changing option) of the same tenant.</summary>
public sealed class ExactCacheConfig
{
    public bool Enabled { get; set; } = true;

    /// <summary>How long an answer is served, e.g. <c>10m</c>, <c>3600s</c>.</summary>
    public string Ttl { get; set; } = "1h";

    /// <summary>Most answers held; the least recently used goes first.</summary>
    public int MaxEntries { get; set; } = 10_000;

    /// <summary>Most bytes of answer text held (an estimate: UTF-16 characters × 2).</summary>
    public long MaxBytes { get; set; } = 256L * 1024 * 1024;
}

/// <summary>Semantic cache: the last user turn matched by embedding similarity, only on routes that opt in.</summary>
public sealed class SemanticCacheConfig
{
    public bool Enabled { get; set; }

    /// <summary>Cosine similarity a match needs unless the route sets its own.</summary>
    public double Threshold { get; set; } = 0.90;

    /// <summary>
    /// In-process <c>minilm</c> (all-MiniLM-L6-v2), <c>arctic-xs</c> (snowflake-arctic-embed-xs) or <c>ensemble</c>
    /// (the mean of both cosines; twice the embedding time), or the name of a configured model of type embedding.
    /// MiniLM by default: with the margin below it held out as well as the ensemble at a fraction of its cost
    /// (docs/benchmarks.md, "Response cache", 2026-11-28).
    /// </summary>
    public string Embeddings { get; set; } = "minilm";

    /// <summary>
    /// A candidate must be nearer than the next different cached prompt by at least this much cosine, or the lookup is
    /// a miss (refused as <c>margin</c>); 0 turns the rule off. Default 0.02: chosen on GPTCache's paraphrase pairs,
    /// where it raised held-out positives at 1% false hits from 46% to 80% (docs/benchmarks.md, 2026-11-28).
    /// </summary>
    public double MinMargin { get; set; } = 0.02;

    public string Ttl { get; set; } = "1h";

    public int MaxEntries { get; set; } = 100_000;
}

public sealed class CacheRouteConfig
{
    /// <summary>Exact caching for this route; null: the section's <c>exact.enabled</c>.</summary>
    public bool? Exact { get; set; }

    /// <summary>Semantic caching for this route (needs <c>semantic.enabled</c>); off unless set.</summary>
    public bool Semantic { get; set; }

    /// <summary>This route's similarity threshold; null: the section's.</summary>
    public double? Threshold { get; set; }

    /// <summary>Also cache sampled answers (temperature above 0, or unset: providers sample by default).</summary>
    public bool CacheSampled { get; set; }
}
