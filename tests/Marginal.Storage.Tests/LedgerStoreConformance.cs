using Marginal.Core.Billing;
using Marginal.Core.Ledger;
using Marginal.Core.Tenancy;

namespace Marginal.Storage.Tests;

/// <summary>
/// What every ledger and key store must do, whatever it is built on. A store's test class derives from this and says
/// how to open a fresh, empty store; the SQLite store runs it today and the cluster store will run the same suite.
/// </summary>
public abstract class LedgerStoreConformance
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    /// <summary>A new, empty store that the test disposes.</summary>
    protected abstract Task<(ILedgerStore Ledger, IKeyStore Keys)> OpenEmptyAsync();

    public static UsageRecord Record(string id, DateTimeOffset? time = null, decimal? cost = 0.000123456789012345m) => new(
        Id: id, Time: time ?? T0, Tenant: "acme", KeyId: "0123456789ab", RequestedModel: "gpt-4o-mini", ServedModel: "claude-haiku",
        Provider: "anthropic", CapacitySource: "api", Status: "ok", Streamed: true, InputTokens: 1200, CachedInputTokens: 1000,
        CacheWriteTokens: 150, OutputTokens: 300, ReasoningTokens: 40, UsageSource: "reported", LatencyMs: 812.5, TimeToFirstTokenMs: 95.25,
        CostUsd: cost, MarginalCostUsd: cost, RevenueUsd: null, CacheOutcome: "miss", RouteReason: "fallback", Levers: "", SavingsUsd: null, Attempts: 2);

    [Fact]
    public async Task AppendAsync_NewRecord_IsFoundWithEveryFieldExact()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var record = Record("req_1") with
        {
            RevenueUsd = 0.0025m, SavingsUsd = 1.000000000000000001m, Levers = "cache=1,routing=0.000000000000000001", TimeToFirstTokenMs = null,
            CacheSimilarity = 0.9731, Tags = "route:auto:quality,ticket",
        };

        var inserted = await ledger.AppendAsync([record]);

        Assert.Equal([true], inserted);
        Assert.Equal(record, await ledger.FindAsync("req_1"));
    }

    [Fact]
    public async Task AppendAsync_NonAsciiLongAndEmptyText_IsFoundExactly()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var record = Record("req_ü東") with
        {
            Tenant = "café-東京-😀", Tags = string.Concat(Enumerable.Repeat("équipe:東京,", 120)), RouteReason = "", Levers = "",
            CostUsd = -79228162514264.337593543950335m, RevenueUsd = 79228162514264.337593543950335m, SavingsUsd = 0m,
        };

        await ledger.AppendAsync([record]);

        Assert.Equal(record, await ledger.FindAsync("req_ü東"));
    }

    [Fact]
    public async Task AppendAsync_RequestHash_IsKeptWithTheRecordAndNullWhenNone()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var keyed = Record("acme:order-1") with { RequestHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08:stream+usage" };

        await ledger.AppendAsync([keyed, Record("req_2")]);

        Assert.Equal(keyed.RequestHash, (await ledger.FindAsync("acme:order-1"))!.RequestHash);
        Assert.Null((await ledger.FindAsync("req_2"))!.RequestHash);
    }

    [Fact]
    public async Task AppendAsync_UnpricedRecord_KeepsNullCost()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        await ledger.AppendAsync([Record("req_1", cost: null) with { ServedModel = null, Provider = null, CapacitySource = null }]);

        var found = await ledger.FindAsync("req_1");

        Assert.Null(found!.CostUsd);
        Assert.Null(found.ServedModel);
    }

    [Fact]
    public async Task AppendAsync_IdAlreadyStored_IsNotStoredTwiceAndKeepsTheFirst()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        await ledger.AppendAsync([Record("req_1", cost: 1m)]);

        var inserted = await ledger.AppendAsync([Record("req_1", cost: 2m), Record("req_2")]);

        Assert.Equal([false, true], inserted);
        Assert.Equal(2, await ledger.CountAsync());
        Assert.Equal(1m, (await ledger.FindAsync("req_1"))!.CostUsd);
    }

    [Fact]
    public async Task AppendAsync_SameIdTwiceInOneBatch_StoresTheFirstOnly()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;

        var inserted = await ledger.AppendAsync([Record("req_1", cost: 1m), Record("req_1", cost: 2m)]);

        Assert.Equal([true, false], inserted);
        Assert.Equal(1m, (await ledger.FindAsync("req_1"))!.CostUsd);
    }

    [Fact]
    public async Task AppendAsync_LargeBatchWithRepeats_FlagsEveryRepeatWherePlaced()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        await ledger.AppendAsync([Record("req_3")]);
        // 300 records: ids 0..249 plus 50 repeats, one at the very end and some right after their first occurrence.
        var ids = Enumerable.Range(0, 250).Select(i => $"req_{i}").Concat(Enumerable.Range(0, 50).Select(i => $"req_{i * 5}")).ToList();
        ids.Insert(11, "req_10");

        var inserted = await ledger.AppendAsync(ids.Select(id => Record(id)).ToList());

        var expected = ids.Select((id, i) => id != "req_3" && ids.IndexOf(id) == i).ToList();
        Assert.Equal(expected, inserted);
        Assert.Equal(250, await ledger.CountAsync());
    }

    [Fact]
    public async Task ReadAsync_Window_ReturnsRecordsFromSinceUpToUntilOldestFirst()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        await ledger.AppendAsync([Record("c", T0.AddHours(2)), Record("a", T0), Record("b", T0.AddHours(1)), Record("d", T0.AddHours(3))]);

        var ids = new List<string>();
        await foreach (var record in ledger.ReadAsync(T0.AddHours(1), T0.AddHours(3)))
        {
            ids.Add(record.Id);
        }

        Assert.Equal(["b", "c"], ids);
    }

    [Fact]
    public async Task AppendAsync_AdjustmentRecord_KeepsKindAndTheRecordItAdjusts()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var adjustment = Record("adj_1") with { Kind = UsageRecordKinds.Adjustment, Adjusts = "req_1", CostUsd = -0.5m, RevenueUsd = -1m };

        await ledger.AppendAsync([Record("req_1"), adjustment]);

        Assert.Equal(UsageRecordKinds.Usage, (await ledger.FindAsync("req_1"))!.Kind);
        Assert.Equal(adjustment, await ledger.FindAsync("adj_1"));
    }

    [Fact]
    public async Task Feedback_AppendedOutOfOrder_IsReadInTimeOrderWithinTheWindow()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        await ledger.AppendFeedbackAsync(new Feedback("req_2", T0.AddMinutes(2), "acme", null, "ticket_resolved"));
        await ledger.AppendFeedbackAsync(new Feedback("req_1", T0.AddMinutes(1), "acme", 0.25, null));
        await ledger.AppendFeedbackAsync(new Feedback("req_1", T0.AddMinutes(3), "acme", 1, "success"));

        var all = await ledger.ReadFeedbackAsync().ToListAsync();
        var window = await ledger.ReadFeedbackAsync(T0.AddMinutes(2), T0.AddMinutes(3)).ToListAsync();

        Assert.Equal([0.25, null, 1.0], all.Select(f => f.Score));
        Assert.Equal(new Feedback("req_2", T0.AddMinutes(2), "acme", null, "ticket_resolved"), Assert.Single(window));
    }

    [Fact]
    public async Task Credits_AddedOutOfOrder_AreReadExactlyInGrantOrder()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var credits = Assert.IsAssignableFrom<ICreditStore>(ledger);
        await credits.AddCreditAsync(new CreditGrant("cr_2", "acme", 5m, T0.AddHours(1), null));
        await credits.AddCreditAsync(new CreditGrant("cr_1", "acme", 100.0000001m, T0, T0.AddDays(30)));

        var grants = await credits.ReadCreditsAsync();

        Assert.Equal([new CreditGrant("cr_1", "acme", 100.0000001m, T0, T0.AddDays(30)), new CreditGrant("cr_2", "acme", 5m, T0.AddHours(1), null)], grants);
    }

    [Fact]
    public async Task FindAsync_UnknownId_ReturnsNull()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;

        Assert.Null(await ledger.FindAsync("nope"));
    }

    [Fact]
    public async Task Keys_AddFindList_RoundTripWithoutTheSecret()
    {
        var (ledger, keys) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var (key, text) = KeyIssuer.Issue("acme", T0, T0.AddDays(30), ["gpt-4o-mini", "claude-haiku"]);

        await keys.AddKeyAsync(key);
        var found = await keys.FindKeyAsync(key.Id);
        var listed = await keys.ListKeysAsync();

        Assert.NotNull(found);
        Assert.Equal(key.Tenant, found.Tenant);
        Assert.Equal(key.Hash, found.Hash);
        Assert.Equal(key.Expires, found.Expires);
        Assert.Equal(key.Models, found.Models);
        Assert.True(KeyIssuer.TryParse(text, out _, out var secret) && KeyIssuer.Verify(found, secret));
        Assert.Equal([key.Id], listed.Select(k => k.Id));
    }

    [Fact]
    public async Task RevokeKeyAsync_Twice_KeepsTheFirstTime()
    {
        var (ledger, keys) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var (key, _) = KeyIssuer.Issue("acme", T0);
        await keys.AddKeyAsync(key);

        Assert.True(await keys.RevokeKeyAsync(key.Id, T0.AddHours(1)));
        Assert.True(await keys.RevokeKeyAsync(key.Id, T0.AddHours(2)));

        Assert.Equal(T0.AddHours(1), (await keys.FindKeyAsync(key.Id))!.Revoked);
        Assert.False(await keys.RevokeKeyAsync("000000000000", T0));
    }

    [Fact]
    public async Task LedgerWriter_ManyConcurrentAppends_EveryRecordDurableOnce()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var writer = new LedgerWriter(ledger, maxBatch: 64);

        var results = await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => Task.Run(() => writer.AppendAsync(Record($"req_{i % 900}")))));
        await writer.DisposeAsync();

        Assert.Equal(900, results.Count(r => r));
        Assert.Equal(100, results.Count(r => !r));
        Assert.Equal(900, await ledger.CountAsync());
    }

    [Fact]
    public async Task SaveRouteExampleAsync_SeveralLabels_ReadBackOldestFirstWithExactEmbeddings()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var examples = Assert.IsAssignableFrom<IRouteExampleStore>(ledger);
        // 384 dimensions like MiniLM's, with values a text or decimal round trip would change.
        RouteExample[] saved =
        [
            new("req_b", "auto", Enumerable.Range(0, 384).Select(i => MathF.Sin(i) / 3f).ToArray()),
            new("req_a", "quality", [float.Epsilon, -0f, 1f / 3f, float.MaxValue]),
        ];

        foreach (var example in saved)
        {
            await examples.SaveRouteExampleAsync(example);
        }
        var read = await examples.ReadRouteExamplesAsync();

        Assert.Equal(["req_b", "req_a"], read.Select(e => e.RequestId));
        Assert.Equal(["auto", "quality"], read.Select(e => e.Alias));
        Assert.Equal(saved[0].Embedding, read[0].Embedding);
        Assert.Equal(saved[1].Embedding, read[1].Embedding);
    }

    [Fact]
    public async Task SaveRouteExampleAsync_SameRequestTwice_KeepsTheFirst()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var examples = Assert.IsAssignableFrom<IRouteExampleStore>(ledger);

        await examples.SaveRouteExampleAsync(new RouteExample("req_1", "auto", [1f, 0f]));
        await examples.SaveRouteExampleAsync(new RouteExample("req_1", "other", [0f, 1f]));

        var only = Assert.Single(await examples.ReadRouteExamplesAsync());
        Assert.Equal("auto", only.Alias);
        Assert.Equal([1f, 0f], only.Embedding);
    }

    [Fact]
    public async Task ReadRouteExamplesAsync_ByRequestIds_ReturnsOnlyThoseStored()
    {
        var (ledger, _) = await OpenEmptyAsync();
        await using var _ledger = ledger;
        var examples = Assert.IsAssignableFrom<IRouteExampleStore>(ledger);
        await examples.SaveRouteExampleAsync(new RouteExample("req_1", "auto", [1f, 0f]));
        await examples.SaveRouteExampleAsync(new RouteExample("req 2 with spaces", "auto", [0f, 1f]));
        await examples.SaveRouteExampleAsync(new RouteExample("req_3", "quality", [0.5f, 0.5f]));

        var read = await examples.ReadRouteExamplesAsync(["req 2 with spaces", "req_3", "req_unknown"]);
        var none = await examples.ReadRouteExamplesAsync([]);

        Assert.Equal(["req 2 with spaces", "req_3"], read.Select(e => e.RequestId).Order(StringComparer.Ordinal));
        Assert.Equal([0f, 1f], read.Single(e => e.RequestId == "req 2 with spaces").Embedding);
        Assert.Empty(none);
    }
}
