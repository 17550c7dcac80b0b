using Marginal.Core.Pricing;

namespace Marginal.Core.Tests.Pricing;

public sealed class PriceBookTests
{
    private static CatalogEntry Entry(string id, decimal input, string source = "test") => new(
        id, "p", id, 1000, "cl100k_base", "standard", CapacityKind.Api,
        new ModelPrice(input, null, null, null, 1m, 1m, source, new DateOnly(2026, 11, 27)));

    [Fact]
    public void Merge_OverrideHasSameId_ReplacesEntryWhole()
    {
        var shipped = new PriceBook([Entry("a", 1m, "vendor page"), Entry("b", 2m)]);
        var overrides = new PriceBook([Entry("a", 0.5m, "our contract")]);

        var merged = shipped.Merge(overrides);

        Assert.True(merged.TryGet("a", out var a));
        Assert.Equal(0.5m, a.Price.Input);
        Assert.Equal("our contract", a.Price.Source);
        Assert.True(merged.TryGet("b", out var b));
        Assert.Equal(2m, b.Price.Input);
        Assert.Equal(2, merged.Count);
        Assert.Equal(1m, shipped.Entries.Single(e => e.Id == "a").Price.Input);
    }

    [Fact]
    public void TryGet_UnknownModel_ReturnsFalse()
    {
        Assert.False(PriceBook.Empty.TryGet("nope", out var entry));
        Assert.Null(entry);
    }
}
