using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Marginal.Core.Budgets;
using Marginal.Core.Ledger;
using Marginal.Core.Requests;
using Marginal.Economics.Invoices;
using Marginal.Economics.Plans;
using Marginal.Gateway.Admission;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
using Microsoft.Extensions.AI;

namespace Marginal.Benchmarks;

/// <summary>
/// Pricing plans over a month of 1M ledger records (the per-record pricer with a running month-to-date, and a whole
/// invoice including its sort), and what admission adds to one request: the budget and rate-limit check, the
/// reservation and the settle, against admission for a tenant without limits (the baseline).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(InProcessJob))]
public class PlansBenchmarks
{
    // In-process: on the shared 2-core machine, building a separate benchmark executable ran past BenchmarkDotNet's
    // two-minute build timeout.
    private sealed class InProcessJob : ManualConfig
    {
        public InProcessJob() =>
            AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(5).WithToolchain(InProcessEmitToolchain.Instance));
    }

    private const int Records = 1_000_000;
    private const int Requests = 1024;

    // Graduated tiers, a premium route, an outcome tag and a discount: every part of the pricer runs.
    private static readonly PricingPlan Plan = new("growth", new Dictionary<string, TokenPrice> { ["m"] = new TokenPrice(0.3m, 0.15m, 1.2m) },
        Markup: 0.5m, Tiers: new TierSchedule(TierMode.Graduated, TierMeasure.Tokens, [new TierBand(10_000_000, 0m), new TierBand(100_000_000, 0.2m), new TierBand(null, 0.4m)]),
        Discount: 0.15m, Outcomes: new Dictionary<string, decimal> { ["ticket_resolved"] = 0.5m }, Surcharges: new Dictionary<string, decimal> { ["auto:quality"] = 0.002m });

    private List<UsageRecord> _month = [];
    private AdmissionPolicy _admission = null!;
    private readonly List<ChatMessage> _messages = [new(ChatRole.System, "You are terse."), new(ChatRole.User, "What does a token cost?")];

    [GlobalSetup]
    public void Setup()
    {
        var start = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        _month = new List<UsageRecord>(Records);
        for (var i = 0; i < Records; i++)
        {
            _month.Add(new UsageRecord($"req_{i:x8}", start.AddSeconds(i * 2.5), "acme", "k1", i % 10 == 0 ? "auto:quality" : "m", "m", "p", "api", "ok", false,
                800 + i % 500, i % 3 == 0 ? 400 : 0, 0, 150 + i % 200, 0, "reported", 100, null, 0.0004m, 0.0004m, null, null, "explicit", "", null, 1,
                Tags: i % 50 == 0 ? "ticket_resolved" : ""));
        }
        var config = ConfigLoader.Parse("providers:\n  p:\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\nmodels:\n  m:\n    provider: p\n    price: deepseek-chat\n", "bench.yaml");
        var models = new GatewayModelSource(GatewayModel.Build(config, TimeProvider.System));
        var billing = PlansLoader.Parse("""
            tenants:
              limited:
                budget: { daily_usd: 1000000, monthly_usd: 1000000 }
                limits: { rpm: 1000000000, tpm: 1000000000000 }
            """, "bench.yaml");
        var accounts = new TenantAccounts(() => billing);
        var counters = new InProcessLimitCounters(TimeProvider.System);
        _admission = new AdmissionPolicy(models, billing, accounts, counters, TimeProvider.System, 4096);
    }

    [Benchmark]
    public decimal PriceMillionRecords()
    {
        var month = default(MonthToDate);
        decimal revenue = 0;
        foreach (var record in _month)
        {
            var charge = PlanPricer.Price(Plan, record, month);
            month = month.Add(PlanPricer.TokensOf(record), charge.ListUsd);
            revenue += charge.RevenueUsd;
        }
        return revenue;
    }

    [Benchmark]
    public decimal InvoiceMillionRecords() => InvoiceBuilder.Build(Plan, "acme", new DateOnly(2026, 11, 1), _month, []).TotalUsd;

    [Benchmark(OperationsPerInvoke = Requests)]
    public Task AdmitWithoutLimits() => AdmitAsync("open");

    [Benchmark(OperationsPerInvoke = Requests)]
    public Task AdmitReserveSettle() => AdmitAsync("limited");

    private async Task AdmitAsync(string tenant)
    {
        for (var i = 0; i < Requests; i++)
        {
            var context = new GatewayContext { Tenant = tenant, KeyId = "k1", CostUsd = 0.0001m };
            var ticket = await _admission.AdmitAsync(context, _messages, new ChatOptions { ModelId = "m", MaxOutputTokens = 256 }, CancellationToken.None);
            if (ticket is not null)
            {
                await _admission.SettleAsync(ticket, context);
            }
        }
    }
}
