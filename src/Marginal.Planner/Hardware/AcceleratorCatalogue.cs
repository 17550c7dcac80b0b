using System.Globalization;
using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Hardware;

/// <summary>The shipped accelerator catalogue (Hardware/accelerators.yaml, embedded), each figure with its source and date.</summary>
public static class AcceleratorCatalogue
{
    private const string Resource = "Marginal.Planner.Hardware.accelerators.yaml";

    private static readonly Lazy<IReadOnlyDictionary<string, AcceleratorConfig>> Catalogue = new(LoadShipped);

    /// <summary>Precisions a peak FLOP/s figure may be given for (fp16 runs at bf16's rate; int4 weights are multiplied at 16 bits).</summary>
    public static readonly string[] PeakPrecisions = ["bf16", "fp8", "fp4"];

    public static IReadOnlyDictionary<string, AcceleratorConfig> Shipped => Catalogue.Value;

    /// <summary>Checks one entry; problems go to <paramref name="problem"/> as (path, what).</summary>
    public static void Validate(AcceleratorConfig accelerator, string at, Action<string, string> problem)
    {
        ScenarioLoader.Positive(accelerator.MemoryGb, $"{at}.memory_gb", "GB", problem);
        ScenarioLoader.Positive(accelerator.BandwidthTbS, $"{at}.bandwidth_tb_s", "TB/s", problem);
        if (!accelerator.DenseTflops.ContainsKey("bf16") || accelerator.DenseTflops.Any(t => !PeakPrecisions.Contains(t.Key) || t.Value <= 0))
        {
            problem($"{at}.dense_tflops", $"needs bf16 and allows {string.Join(", ", PeakPrecisions)}, each above 0 TFLOP/s");
        }
        if (string.IsNullOrWhiteSpace(accelerator.SpecSource) || !ScenarioLoader.IsDate(accelerator.SpecAsOf))
        {
            problem($"{at}.spec_source", "every accelerator needs spec_source (the document its figures come from) and spec_as_of (YYYY, YYYY-MM or YYYY-MM-DD)");
        }
        if (accelerator.PurchasePrice is { } price)
        {
            if (price <= 0)
            {
                problem($"{at}.purchase_price", $"{price.ToString(CultureInfo.InvariantCulture)} is out of range (allowed: USD per accelerator, above 0)");
            }
            else if (string.IsNullOrWhiteSpace(accelerator.PriceSource) || !ScenarioLoader.IsDate(accelerator.PriceAsOf))
            {
                problem($"{at}.purchase_price", "a purchase price must come with price_source and price_as_of (allowed: a source and a date, YYYY, YYYY-MM or YYYY-MM-DD)");
            }
        }
        if (accelerator.PowerKw is { } kw)
        {
            ScenarioLoader.Positive(kw, $"{at}.power_kw", "kW", problem);
        }
        // A life under a month is refused rather than raised to one (depreciation is monthly).
        if (!(accelerator.LifetimeYears >= 1.0 / 12 && accelerator.LifetimeYears <= 30))
        {
            problem($"{at}.lifetime_years", $"{accelerator.LifetimeYears.ToString(CultureInfo.InvariantCulture)} is out of range (allowed: years, 0.0833 (one month) to 30)");
        }
        if (!(accelerator.SoftwareEfficiency > 0 && accelerator.SoftwareEfficiency <= 1))
        {
            problem($"{at}.software_efficiency", $"{accelerator.SoftwareEfficiency.ToString(CultureInfo.InvariantCulture)} is out of range (allowed: above 0, at most 1)");
        }
        if (!(accelerator.ResidualFraction >= 0 && accelerator.ResidualFraction < 1))
        {
            problem($"{at}.residual_fraction", $"{accelerator.ResidualFraction.ToString(CultureInfo.InvariantCulture)} is out of range (allowed: a share of the purchase price, 0 to below 1)");
        }
    }

    private static Dictionary<string, AcceleratorConfig> LoadShipped()
    {
        var entries = ScenarioLoader.Read<Dictionary<string, AcceleratorConfig>>(Performance.EmbeddedText.Read(Resource), "accelerators.yaml");
        var problems = new List<string>();
        foreach (var (name, entry) in entries)
        {
            Validate(entry, name, (path, what) => problems.Add($"accelerators.yaml: {path}: {what}"));
        }
        return problems.Count == 0 ? entries : throw new ScenarioException(problems);
    }
}
