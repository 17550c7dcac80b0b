using Marginal.Core.Pricing;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pricing;

namespace Marginal.Gateway.Tests.Pricing;

public sealed class PriceBookLoaderTests
{
    private const string Head = "models:\n  m:\n    provider: p\n    context_window: 1000\n    tokenizer: cl100k_base\n    quality_tier: standard\n    capacity: api\n";
    private const string Tail = "    source: https://example.com/pricing\n    as_of: 2026-11-27\n";

    [Fact]
    public void LoadShipped_EveryEntry_HasSourceAndAsOf()
    {
        var book = PriceBookLoader.LoadShipped();

        Assert.NotEqual(0, book.Count);
        Assert.All(book.Entries, e =>
        {
            Assert.False(string.IsNullOrWhiteSpace(e.Price.Source));
            Assert.NotEqual(default, e.Price.AsOf);
        });
    }

    [Fact]
    public void LoadShipped_AnthropicEntries_OneHourWriteIsTwiceInputAndBatchIsHalf()
    {
        var anthropic = PriceBookLoader.LoadShipped().Entries.Where(e => e.Provider == "anthropic").ToList();

        Assert.NotEmpty(anthropic);
        Assert.All(anthropic, e =>
        {
            Assert.Equal(e.Price.Input * 2m, e.Price.CacheWrite1h);
            Assert.Equal(0.5m, e.Price.BatchMultiplier);
        });
    }

    [Fact]
    public void LoadShipped_ClaudeSonnet4_FollowsThePublishedCacheMultipliers()
    {
        // 5m write 1.25x, 1h write 2x, cache hit 0.1x the base input price. (The page rounds some small prices, e.g.
        // Claude Haiku 3's 5m write is listed at $0.30, not 1.25 x $0.25, so the book keeps the page's figures.)
        Assert.True(PriceBookLoader.LoadShipped().TryGet("claude-sonnet-4", out var sonnet));

        Assert.Equal(sonnet.Price.Input * 1.25m, sonnet.Price.CacheWrite5m);
        Assert.Equal(sonnet.Price.Input * 2m, sonnet.Price.CacheWrite1h);
        Assert.Equal(sonnet.Price.Input * 0.1m, sonnet.Price.CachedInput);
    }

    [Fact]
    public void LoadShipped_DeepSeekChat_HasTheSeptember2025PriceListPerMillion()
    {
        Assert.True(PriceBookLoader.LoadShipped().TryGet("deepseek-chat", out var chat));

        Assert.Equal("deepseek", chat.Provider);
        Assert.Equal(131072, chat.ContextWindow);
        Assert.Equal(0.56m, chat.Price.Input);
        Assert.Equal(0.07m, chat.Price.CachedInput);
        Assert.Null(chat.Price.CacheWrite5m);
        Assert.Equal(1.68m, chat.Price.Output);
        Assert.Equal(1m, chat.Price.BatchMultiplier);
    }

    [Fact]
    public void LoadShipped_FireworksGptOss120b_HasItsServerlessPricesPerMillionAndHalfPriceBatch()
    {
        Assert.True(PriceBookLoader.LoadShipped().TryGet("fireworks/gpt-oss-120b", out var oss));

        Assert.Equal("fireworks", oss.Provider);
        Assert.Equal("accounts/fireworks/models/gpt-oss-120b", oss.UpstreamId);
        Assert.Equal("o200k_base", oss.TokenizerEncoding);
        Assert.Equal(CapacityKind.Api, oss.Capacity);
        Assert.Equal(new ModelPrice(0.15m, 0.015m, null, null, 0.60m, 0.5m, "https://docs.fireworks.ai/serverless/pricing", new DateOnly(2026, 11, 27)), oss.Price);
    }

    [Fact]
    public void LoadShipped_OpenAIAndGoogleEntries_AreListedWithTheirVendorPages()
    {
        var book = PriceBookLoader.LoadShipped();

        foreach (var (id, source) in new[]
        {
            ("gpt-5-mini", "https://developers.openai.com/api/docs/models/gpt-5-mini"),
            ("gpt-5-nano", "https://developers.openai.com/api/docs/models/gpt-5-nano"),
            ("gemini-3.1-pro-preview", "https://ai.google.dev/gemini-api/docs/pricing"),
            ("gemini-3.5-flash", "https://ai.google.dev/gemini-api/docs/pricing"),
        })
        {
            Assert.True(book.TryGet(id, out var entry), id);
            Assert.Equal(source, entry.Price.Source);
        }
    }

    [Fact]
    public void Cost_Gpt5MiniWithCachedAndReasoningTokens_MatchesHandComputedCost()
    {
        Assert.True(PriceBookLoader.LoadShipped().TryGet("gpt-5-mini", out var mini));
        // OpenAI's usage: prompt_tokens 10,000 of which cached_tokens 8,000; completion_tokens 500 of which reasoning 200.
        var usage = new TokenUsage(10_000, CachedInputTokens: 8_000, OutputTokens: 500, ReasoningTokens: 200);

        // (2,000 uncached x 0.25 + 8,000 cached x 0.025 + 500 output x 2.00) / 1M = (500 + 200 + 1,000) / 1M
        Assert.Equal(0.0017m, CostCalculator.Cost(usage, mini.Price));
    }

    [Fact]
    public void Cost_Gemini35FlashBatched_MatchesHandComputedCost()
    {
        Assert.True(PriceBookLoader.LoadShipped().TryGet("gemini-3.5-flash", out var flash));
        // 4,000 prompt tokens (1,000 of them read from the context cache at 0.15), 1,000 output.
        var usage = new TokenUsage(4_000, CachedInputTokens: 1_000, OutputTokens: 1_000, Batched: true);

        // (3,000 x 1.50 + 1,000 x 0.15 + 1,000 x 9.00) / 1M = 0.01365, batch x 0.5
        Assert.Equal(0.006825m, CostCalculator.Cost(usage, flash.Price));
    }

    [Theory]
    [InlineData("gpt-4o", 2.50, 1.25, 10.00, 0.5)]
    [InlineData("gpt-4o-mini", 0.15, 0.075, 0.60, 0.5)]
    [InlineData("gpt-4.1", 2.00, 0.50, 8.00, 0.5)]
    [InlineData("gpt-4.1-mini", 0.40, 0.10, 1.60, 0.5)]
    [InlineData("gpt-4.1-nano", 0.10, 0.025, 0.40, 0.5)]
    [InlineData("o3", 2.00, 0.50, 8.00, 1)]
    [InlineData("o4-mini", 1.10, 0.275, 4.40, 1)]
    [InlineData("gpt-5", 1.25, 0.125, 10.00, 1)]
    [InlineData("gpt-5.4", 2.50, 0.25, 15.00, 0.5)]
    [InlineData("gpt-5.5", 5.00, 0.50, 30.00, 0.5)]
    [InlineData("gemini-2.5-pro", 1.25, 0.125, 10.00, 1)]
    [InlineData("gemini-2.5-flash", 0.30, 0.03, 2.50, 1)]
    public void LoadShipped_ConfirmedEntry_HasItsPublishedPricesPerMillion(string id, double input, double cached, double output, double batch)
    {
        Assert.True(PriceBookLoader.LoadShipped().TryGet(id, out var entry), id);

        Assert.Equal((decimal)input, entry.Price.Input);
        Assert.Equal((decimal)cached, entry.Price.CachedInput);
        Assert.Equal((decimal)output, entry.Price.Output);
        Assert.Equal((decimal)batch, entry.Price.BatchMultiplier);
    }

    [Fact]
    public void LoadShipped_EntriesFromPublicTables_NameTheTableAndADateBeforeTheBook()
    {
        var book = PriceBookLoader.LoadShipped();
        var fromTables = book.Entries.Where(e => e.Price.Source.Contains("pydantic/genai-prices", StringComparison.Ordinal)).ToList();

        Assert.NotEmpty(fromTables);
        Assert.All(fromTables, e => Assert.InRange(e.Price.AsOf, new DateOnly(2025, 1, 1), new DateOnly(2026, 11, 28)));
    }

    [Fact]
    public void Cost_Gpt41Batched_MatchesHandComputedCost()
    {
        Assert.True(PriceBookLoader.LoadShipped().TryGet("gpt-4.1", out var gpt41));
        // prompt_tokens 100,000 of which cached_tokens 60,000; completion_tokens 2,000; sent through the Batch API.
        var usage = new TokenUsage(100_000, CachedInputTokens: 60_000, OutputTokens: 2_000, Batched: true);

        // (40,000 x 2.00 + 60,000 x 0.50 + 2,000 x 8.00) / 1M = (80,000 + 30,000 + 16,000) / 1M = 0.126, batch x 0.5
        Assert.Equal(0.063m, CostCalculator.Cost(usage, gpt41.Price));
    }

    [Fact]
    public void Parse_ValidEntry_BindsSnakeCaseKeysAndDefaults()
    {
        var yaml = Head + "    input: 3\n    cached_input: 0.30\n    cache_write_5m: 3.75\n    cache_write_1h: 6\n    output: 15\n" + Tail;

        var book = PriceBookLoader.Parse(yaml, "prices.yaml");

        Assert.True(book.TryGet("m", out var m));
        Assert.Equal(new ModelPrice(3m, 0.30m, 3.75m, 6m, 15m, 1m, "https://example.com/pricing", new DateOnly(2026, 11, 27)), m.Price);
        Assert.Equal("m", m.UpstreamId);
        Assert.Equal(CapacityKind.Api, m.Capacity);
        Assert.Equal(1000, m.ContextWindow);
    }

    [Theory]
    [InlineData(Head + "    input: 0.0000025\n    output: 10\n" + Tail,
        "prices.yaml: models.m.input: 0.0000025 looks like a price per token; prices are USD per million tokens (that would be 2.5)")]
    [InlineData(Head + "    input: 2.5\n    output: 0.00001\n" + Tail,
        "prices.yaml: models.m.output: 0.00001 looks like a price per token; prices are USD per million tokens (that would be 10)")]
    [InlineData(Head + "    input: 2.5\n    cached_input: -1\n    output: 10\n" + Tail,
        "prices.yaml: models.m.cached_input: must be zero or more, got -1")]
    [InlineData(Head + "    input: 2.5\n    output: 10\n    batch_multiplier: 1.5\n" + Tail,
        "prices.yaml: models.m.batch_multiplier: must be more than 0 and at most 1 (e.g. 0.5 for half price), got 1.5")]
    [InlineData(Head + "    input: 2.5\n    output: 10\n    batch_multiplier: 0\n" + Tail,
        "prices.yaml: models.m.batch_multiplier: must be more than 0 and at most 1 (e.g. 0.5 for half price), got 0")]
    [InlineData(Head + "    input: 2.5\n    output: 10\n    as_of: 2026-11-27\n",
        "prices.yaml: models.m.source: is missing; every price names where it came from (a URL or document name)")]
    [InlineData(Head + "    input: 2.5\n    output: 10\n    source: vendor page\n",
        "prices.yaml: models.m.as_of: is missing; every price is dated (YYYY-MM-DD)")]
    [InlineData(Head + "    input: 2.5\n    output: 10\n    source: vendor page\n    as_of: last week\n",
        "prices.yaml: models.m.as_of: 'last week' is not a date (YYYY-MM-DD)")]
    [InlineData("models:\n  m:\n    provider: p\n    context_window: 1000\n    tokenizer: cl100k_base\n    quality_tier: standard\n    capacity: leased\n    input: 1\n    output: 1\n" + Tail,
        "prices.yaml: models.m.capacity: 'leased' is not allowed (allowed: api, rented, owned)")]
    [InlineData("models:\n  m:\n    provider: p\n    context_window: 1000\n    tokenizer: p50k_base\n    quality_tier: standard\n    capacity: api\n    input: 1\n    output: 1\n" + Tail,
        "prices.yaml: models.m.tokenizer: 'p50k_base' is not allowed (allowed: o200k_base, cl100k_base, gguf)")]
    [InlineData(Head + "    output: 10\n" + Tail,
        "prices.yaml: models.m.input: is missing; needs the input price in USD per million tokens")]
    [InlineData(Head + "    input: 1\n    output: 1\n    cache_write: 2\n" + Tail,
        "prices.yaml:10:5: unknown key 'cache_write' in a model (allowed: provider, upstream, context_window, tokenizer, quality_tier, capacity, input, cached_input, cache_write_5m, cache_write_1h, output, batch_multiplier, source, as_of)")]
    [InlineData("models:\n  m:\n",
        "prices.yaml: models.m: is empty; needs provider, context_window, tokenizer, quality_tier, capacity, input, output, source and as_of")]
    public void Parse_BadEntry_OneLineNamingFileModelFieldAndExpected(string yaml, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => PriceBookLoader.Parse(yaml, "prices.yaml"));

        Assert.Equal(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Parse_ZeroPrice_IsAllowed()
    {
        var book = PriceBookLoader.Parse(Head.Replace("capacity: api", "capacity: owned", StringComparison.Ordinal) + "    input: 0\n    output: 0\n" + Tail, "prices.yaml");

        Assert.True(book.TryGet("m", out var m));
        Assert.Equal(0m, m.Price.Input);
        Assert.Equal(CapacityKind.Owned, m.Capacity);
    }

    [Fact]
    public void LoadWithOverride_OverrideFile_ReplacesShippedEntryAndAddsNewOnes()
    {
        var shipped = PriceBookLoader.LoadShipped();
        var replaced = shipped.Entries.First();
        var path = Path.Combine(Path.GetTempPath(), $"pricebook-override-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path,
            $"models:\n  {replaced.Id}:\n    provider: p\n    context_window: 1000\n    tokenizer: cl100k_base\n    quality_tier: standard\n    capacity: rented\n    input: 1\n    output: 2\n    source: our contract\n    as_of: 2026-11-01\n" +
            "  local-llama:\n    provider: local\n    context_window: 8192\n    tokenizer: gguf\n    quality_tier: economy\n    capacity: owned\n    input: 0\n    output: 0\n    source: own hardware\n    as_of: 2026-11-01\n");
        try
        {
            var merged = PriceBookLoader.LoadWithOverride(path);

            Assert.Equal(shipped.Count + 1, merged.Count);
            Assert.True(merged.TryGet(replaced.Id, out var entry));
            Assert.Equal("our contract", entry.Price.Source);
            Assert.Null(entry.Price.CachedInput);
            Assert.Equal(CapacityKind.Rented, entry.Capacity);
            Assert.True(merged.TryGet("local-llama", out _));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void LoadWithOverride_NoOverride_IsTheShippedBook()
    {
        Assert.Equal(PriceBookLoader.LoadShipped().Count, PriceBookLoader.LoadWithOverride(null).Count);
    }

    [Fact]
    public void Load_MissingFile_NamesFile()
    {
        var error = Assert.Throws<ConfigException>(() => PriceBookLoader.Load("/nonexistent/prices.yaml"));

        Assert.StartsWith("/nonexistent/prices.yaml: cannot read the file", error.Message, StringComparison.Ordinal);
    }
}
