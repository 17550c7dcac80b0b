using Marginal.Core.Ledger;
using Marginal.Economics.UnitEconomics;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pricing;
using Marginal.Server.Dashboard;

namespace Marginal.Server.Tests.Dashboard;

public sealed class EconomicsInputsTests
{
    private static readonly DateTimeOffset Since = new(2026, 11, 1, 10, 0, 0, TimeSpan.Zero);

    // An owned standard-tier model, two standard-tier API models (one cheap on input, one cheap on the blend), an
    // economy-tier API model (cheapest of all, but of another tier).
    private const string Book = """
        models:
          own-std:
            provider: local
            context_window: 4096
            tokenizer: gguf
            quality_tier: standard
            capacity: owned
            input: 0.5
            output: 0.5
            source: test
            as_of: 2026-11-28
          cheap-input-std:
            provider: vendor-a
            context_window: 4096
            tokenizer: o200k_base
            quality_tier: standard
            capacity: api
            input: 1
            output: 20
            source: test
            as_of: 2026-11-28
          blend-std:
            provider: vendor-b
            context_window: 4096
            tokenizer: o200k_base
            quality_tier: standard
            capacity: api
            input: 3
            output: 4
            source: test
            as_of: 2026-11-28
          eco:
            provider: vendor-c
            context_window: 4096
            tokenizer: o200k_base
            quality_tier: economy
            capacity: api
            input: 0.1
            output: 0.2
            source: test
            as_of: 2026-11-28
        """;

    // Pool: 87,600 USD over 12 months = 10 USD/h, 2 kW × 0.10 USD/kWh = 0.2 USD/h energy; 10.2 USD/h in all.
    private static MarginalConfig Config(params string[] fallbacks)
    {
        var config = new MarginalConfig();
        config.Providers["gpu"] = new ProviderConfig
        {
            Kind = "local",
            Pool = new PoolConfig { PurchaseUsd = 87_600m, LifetimeMonths = 12, PowerKw = 2m, UsdPerKwh = 0.1m },
        };
        config.Providers["vendor"] = new ProviderConfig { Kind = "openai" };
        config.Models["llama"] = new ModelConfig { Provider = "gpu", Price = "own-std", Fallbacks = [.. fallbacks] };
        config.Models["cheap-input-std"] = new ModelConfig { Provider = "vendor" };
        return config;
    }

    // One owned request in the second hour: 2,000 input + 2,000 output tokens, 5.1 USD loaded = 0.5 busy hours.
    private static readonly UsageRecord[] Seeded =
    [
        new(Id: "r1", Time: Since.AddMinutes(70), Tenant: "a", KeyId: "k", RequestedModel: "llama", ServedModel: "llama", Provider: "gpu",
            CapacitySource: "owned", Status: "ok", Streamed: false, InputTokens: 2000, CachedInputTokens: 0, CacheWriteTokens: 0, OutputTokens: 2000,
            ReasoningTokens: 0, UsageSource: "reported", LatencyMs: 10, TimeToFirstTokenMs: null, CostUsd: 5.1m, MarginalCostUsd: 0.1m, RevenueUsd: null,
            CacheOutcome: null, RouteReason: null, Levers: "", SavingsUsd: null, Attempts: 1),
    ];

    private static EconomicsReport Report(MarginalConfig config)
    {
        var (pools, spillover) = EconomicsInputs.From(config, PriceBookLoader.Parse(Book, "book.yaml"));
        return EconomicsQueries.Build(UsageRollup.From(Seeded), Since, Since.AddHours(2), EconomicsGrouping.Model, pools, spillover);
    }

    [Fact]
    public void From_PoolWithIdlePower_IdleEnergyIsIdleKwTimesPueTimesPrice()
    {
        var config = Config();
        config.Providers["gpu"].Pool!.IdlePowerKw = 0.5m;
        config.Providers["gpu"].Pool!.Pue = 1.2m;

        var (pools, _) = EconomicsInputs.From(config, PriceBookLoader.Parse(Book, "book.yaml"));

        // 0.5 kW × PUE 1.2 × 0.10 USD/kWh = 0.06 USD/h; without idle_power_kw it is not modelled (null)
        Assert.Equal(0.06m, Assert.Single(pools).IdleEnergyPerHourUsd);
        Assert.Null(Assert.Single(EconomicsInputs.From(Config(), PriceBookLoader.Parse(Book, "book.yaml")).Pools).IdleEnergyPerHourUsd);
    }

    [Fact]
    public void From_OwnedModelWithoutFallback_StandInsAreApiModelsOfItsTier()
    {
        var (_, spillover) = EconomicsInputs.From(Config(), PriceBookLoader.Parse(Book, "book.yaml"));

        Assert.Equal(["blend-std", "cheap-input-std"], spillover.Select(s => s.Model));
        Assert.All(spillover, s => Assert.NotNull(s.Basis));
    }

    [Fact]
    public void Build_NoPricedFallback_PastHeadroomPricedAtCheapestSameTierBlend()
    {
        var report = Report(Config());

        // headroom: (1 − 0.5 recent utilisation) × 8,000 tokens per busy hour = 4,000 tokens at 0.2 ÷ 8,000 × 1M = 25 USD/1M;
        // the rest at the input share 0.5: blend-std 0.5 × 3 + 0.5 × 4 = 3.5 beats cheap-input-std 0.5 × 1 + 0.5 × 20 = 10.5
        Assert.Equal(new MarginalSegment(0, 4000, "gpu headroom (energy only)", 25m), report.MarginalCurve[0]);
        Assert.Equal(3.5m, report.MarginalCurve[1].UsdPerMillion);
        Assert.StartsWith("blend-std at list price (cheapest standard-tier", report.MarginalCurve[1].Source, StringComparison.Ordinal);
        // 25 × 4,000 ÷ 1M + 3.5 × 996,000 ÷ 1M = 0.1 + 3.486
        Assert.Equal(3.586m, report.NextMillionTokensUsd);
    }

    [Fact]
    public void Build_PricedFallbackConfigured_FallbackTakesTheSpillEvenWhenDearer()
    {
        var report = Report(Config("cheap-input-std"));

        // 0.1 + 10.5 × 996,000 ÷ 1M
        Assert.Equal(new MarginalSegment(4000, 1_000_000, "spill-over to cheap-input-std", 10.5m), report.MarginalCurve[1]);
        Assert.Equal(0.1m + 10.458m, report.NextMillionTokensUsd);
    }
}
