using System.Globalization;
using Marginal.Core.Pricing;
using Marginal.Gateway.Configuration;

namespace Marginal.Gateway.Pricing;

/// <summary>
/// Reads price book files into a validated <see cref="PriceBook"/>: the shipped <c>pricebook.yaml</c> (an embedded
/// resource) and a deployment's override, merged by model id. Every failure is a <see cref="ConfigException"/> whose
/// message is one line: file, model, field, what is expected.
/// </summary>
public static class PriceBookLoader
{
    public static readonly string[] CapacityKinds = ["api", "rented", "owned"];
    public static readonly string[] TokenizerEncodings = ["o200k_base", "cl100k_base", "gguf"];
    public static readonly string[] QualityTiers = ["frontier", "standard", "economy"];

    /// <summary>The name the shipped book goes by in messages.</summary>
    public const string ShippedFileName = "pricebook.yaml";

    private const string ShippedResource = "Marginal.Gateway.Pricing.pricebook.yaml";

    /// <summary>
    /// A positive price below this, in USD per million tokens, is taken for a per-token price entered by mistake: the
    /// cheapest list prices are around 0.01 per million (cache reads), while per-token prices are around 1e-7 to 1e-4.
    /// Entering per-token prices where per-million ones are expected is a known bug class in other gateways, and it
    /// makes every cost a million times too small without any other symptom.
    /// </summary>
    public const decimal SmallestPlausiblePrice = 0.001m;

    private static readonly (string? Name, Type Type)[] Sections =
    [
        ("a model", typeof(ModelPriceConfig)), (null, typeof(PriceBookConfig)),
    ];

    /// <summary>The book shipped with the gateway.</summary>
    public static PriceBook LoadShipped()
    {
        using var stream = typeof(PriceBookLoader).Assembly.GetManifestResourceStream(ShippedResource)
            ?? throw new ConfigException($"{ShippedFileName}: the shipped price book is missing from the build");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), ShippedFileName);
    }

    /// <summary>
    /// The shipped book, with the file at <paramref name="overridePath"/> laid over it when one is given: an override
    /// entry replaces the shipped entry of the same model id whole; other shipped entries stay.
    /// </summary>
    public static PriceBook LoadWithOverride(string? overridePath)
    {
        var shipped = LoadShipped();
        return overridePath is null ? shipped : shipped.Merge(Load(overridePath));
    }

    /// <summary>Loads and validates the file at <paramref name="path"/>.</summary>
    public static PriceBook Load(string path) => Parse(YamlFiles.ReadAllText(path), path);

    /// <summary>Parses and validates YAML text; <paramref name="fileName"/> only names the source in messages.</summary>
    public static PriceBook Parse(string yaml, string fileName)
    {
        var config = YamlFiles.Deserialize<PriceBookConfig>(yaml, fileName, Sections);
        var entries = new List<CatalogEntry>(config.Models.Count);
        foreach (var (name, model) in config.Models)
        {
            entries.Add(ToEntry(name, model, $"{fileName}: models.{name}"));
        }
        return new PriceBook(entries);
    }

    private static CatalogEntry ToEntry(string name, ModelPriceConfig? model, string at)
    {
        if (model is null)
        {
            throw new ConfigException($"{at}: is empty; needs provider, context_window, tokenizer, quality_tier, capacity, input, output, source and as_of");
        }
        if (string.IsNullOrWhiteSpace(model.Provider))
        {
            throw new ConfigException($"{at}.provider: is missing; name who serves the model (e.g. anthropic, deepseek, local)");
        }
        if (model.ContextWindow is not > 0)
        {
            throw new ConfigException($"{at}.context_window: must be a positive number of tokens, got {model.ContextWindow?.ToString(CultureInfo.InvariantCulture) ?? "nothing"}");
        }
        var tokenizer = OneOf(model.Tokenizer, TokenizerEncodings, $"{at}.tokenizer");
        var tier = OneOf(model.QualityTier, QualityTiers, $"{at}.quality_tier");
        var capacity = OneOf(model.Capacity, CapacityKinds, $"{at}.capacity") switch
        {
            "api" => CapacityKind.Api,
            "rented" => CapacityKind.Rented,
            _ => CapacityKind.Owned,
        };
        var input = Required(model.Input, $"{at}.input", "the input price");
        var cachedInput = Optional(model.CachedInput, $"{at}.cached_input");
        var write5m = Optional(model.CacheWrite5m, $"{at}.cache_write_5m");
        var write1h = Optional(model.CacheWrite1h, $"{at}.cache_write_1h");
        var output = Required(model.Output, $"{at}.output", "the output price");
        var batch = model.BatchMultiplier ?? 1m;
        if (batch is <= 0m or > 1m)
        {
            throw new ConfigException($"{at}.batch_multiplier: must be more than 0 and at most 1 (e.g. 0.5 for half price), got {Show(batch)}");
        }
        if (string.IsNullOrWhiteSpace(model.Source))
        {
            throw new ConfigException($"{at}.source: is missing; every price names where it came from (a URL or document name)");
        }
        if (string.IsNullOrWhiteSpace(model.AsOf))
        {
            throw new ConfigException($"{at}.as_of: is missing; every price is dated (YYYY-MM-DD)");
        }
        if (!DateOnly.TryParseExact(model.AsOf, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var asOf))
        {
            throw new ConfigException($"{at}.as_of: '{model.AsOf}' is not a date (YYYY-MM-DD)");
        }
        var price = new ModelPrice(input, cachedInput, write5m, write1h, output, batch, model.Source.Trim(), asOf);
        return new CatalogEntry(name, model.Provider.Trim(), model.Upstream ?? name, model.ContextWindow.Value, tokenizer, tier, capacity, price);
    }

    private static string OneOf(string? value, string[] allowed, string at) =>
        value is not null && allowed.Contains(value)
            ? value
            : throw new ConfigException($"{at}: '{value}' is not allowed (allowed: {string.Join(", ", allowed)})");

    private static decimal Required(decimal? value, string at, string what) =>
        value is { } v
            ? Checked(v, at)
            : throw new ConfigException($"{at}: is missing; needs {what} in USD per million tokens");

    private static decimal? Optional(decimal? value, string at) => value is { } v ? Checked(v, at) : null;

    private static decimal Checked(decimal price, string at)
    {
        if (price < 0m)
        {
            throw new ConfigException($"{at}: must be zero or more, got {Show(price)}");
        }
        if (price is > 0m and < SmallestPlausiblePrice)
        {
            throw new ConfigException($"{at}: {Show(price)} looks like a price per token; prices are USD per million tokens (that would be {Show(price * 1_000_000m)})");
        }
        return price;
    }

    // Dividing by 1 with the largest scale drops the trailing zeros a decimal keeps (2.5000000 -> 2.5) without the
    // exponent notation "G29" would use for small values (0.0000025, not 2.5E-06).
    private static string Show(decimal value) =>
        (value / 1.0000000000000000000000000000m).ToString(CultureInfo.InvariantCulture);
}
