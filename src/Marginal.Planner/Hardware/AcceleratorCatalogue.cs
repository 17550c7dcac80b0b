using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Hardware;

/// <summary>The shipped accelerator catalogue (Hardware/accelerators.yaml, embedded), each figure with its source and date.</summary>
public static class AcceleratorCatalogue
{
    private const string Resource = "Marginal.Planner.Hardware.accelerators.yaml";

    private static readonly Lazy<IReadOnlyDictionary<string, AcceleratorConfig>> Catalogue = new(LoadShipped);

    public static IReadOnlyDictionary<string, AcceleratorConfig> Shipped => Catalogue.Value;

    /// <summary>Checks one entry; problems go to <paramref name="problem"/> as (path, what).</summary>
    public static void Validate(AcceleratorConfig accelerator, string at, Action<string, string> problem)
    {
        ScenarioLoader.Positive(accelerator.MemoryGb, $"{at}.memory_gb", "GB", problem);
        ScenarioLoader.Positive(accelerator.BandwidthTbS, $"{at}.bandwidth_tb_s", "TB/s", problem);
        if (!accelerator.DenseTflops.ContainsKey("bf16") || accelerator.DenseTflops.Any(t => !ScenarioLoader.Precisions.Contains(t.Key) || t.Value <= 0))
        {
            problem($"{at}.dense_tflops", $"needs bf16 and allows {string.Join(", ", ScenarioLoader.Precisions)}, each above 0 TFLOP/s");
        }
        if (string.IsNullOrWhiteSpace(accelerator.SpecSource) || !ScenarioLoader.IsDate(accelerator.SpecAsOf))
        {
            problem($"{at}.spec_source", "every accelerator needs spec_source (the document its figures come from) and spec_as_of (YYYY, YYYY-MM or YYYY-MM-DD)");
        }
        if (accelerator.PurchasePrice is { } price && (price <= 0 || string.IsNullOrWhiteSpace(accelerator.PriceSource) || !ScenarioLoader.IsDate(accelerator.PriceAsOf)))
        {
            problem($"{at}.purchase_price", "a purchase price must be above 0 and come with price_source and price_as_of");
        }
        ScenarioLoader.Positive(accelerator.LifetimeYears, $"{at}.lifetime_years", "years", problem);
        ScenarioLoader.Fraction(accelerator.ResidualFraction, $"{at}.residual_fraction", problem, allowZero: true);
    }

    private static Dictionary<string, AcceleratorConfig> LoadShipped()
    {
        using var stream = typeof(AcceleratorCatalogue).Assembly.GetManifestResourceStream(Resource)
            ?? throw new InvalidOperationException($"{Resource} is not embedded in the planner assembly");
        using var reader = new StreamReader(stream);
        var entries = ScenarioLoader.Read<Dictionary<string, AcceleratorConfig>>(reader.ReadToEnd(), "accelerators.yaml");
        var problems = new List<string>();
        foreach (var (name, entry) in entries)
        {
            Validate(entry, name, (path, what) => problems.Add($"accelerators.yaml: {path}: {what}"));
        }
        return problems.Count == 0 ? entries : throw new ScenarioException(problems);
    }
}
