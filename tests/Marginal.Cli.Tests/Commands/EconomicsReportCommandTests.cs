using System.Text.Json.Nodes;

namespace Marginal.Cli.Tests.Commands;

public sealed class EconomicsReportCommandTests() : UpstreamWorkspace("none")
{
    [Fact]
    public async Task ReportEconomics_OwnedPoolWithoutFallback_NextMillionPricedAtConfiguredApiModel()
    {
        // An owned pool whose model has no fallback and no price-book entry: past its headroom the report prices the
        // tokens at the configured API model (deepseek-chat, shipped book: 0.56 in / 1.68 out per 1M).
        var yaml = (await File.ReadAllTextAsync(ConfigPath) + "\n  llama:\n    provider: gpu\n").Replace("providers:\n", """
            providers:
              gpu:
                kind: local
                path: model.gguf
                pool:
                  purchase_usd: 87600
                  lifetime_months: 12
                  power_kw: 2
                  usd_per_kwh: 0.1

            """, StringComparison.Ordinal);
        await File.WriteAllTextAsync(ConfigPath, yaml);

        var (exit, json, error) = await MarginalProcess.RunAsync(WorkDir, "report", "economics", "--format", "json", "--config", ConfigPath);

        Assert.True(exit == 0, error);
        var report = JsonNode.Parse(json)!;
        // An empty ledger: no headroom measured, input share 0.5, so 1M tokens at (0.56 + 1.68) ÷ 2 = 1.12 USD.
        Assert.Equal(1.12m, report["next_million_tokens_usd"]!.GetValue<decimal>());
        var segment = report["marginal_curve"]!.AsArray().Single()!;
        Assert.StartsWith("deepseek-chat at list price (cheapest configured API model", segment["source"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
