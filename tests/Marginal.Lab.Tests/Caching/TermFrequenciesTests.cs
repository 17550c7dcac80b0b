using Marginal.Lab.Caching;

namespace Marginal.Lab.Tests.Caching;

public sealed class TermFrequenciesTests
{
    [Fact]
    public void TokensOf_BacktickedPathAndTrailingDot_LowerCasedAndTrimmed()
    {
        var tokens = TermFrequencies.TokensOf("Use `Foo_Bar` in src/App.py, v2.");

        Assert.Equal(new HashSet<string>(["use", "foo_bar", "in", "src/app.py", "v2"]), tokens);
    }

    [Fact]
    public void SpecialTokensOf_CamelCasePathAcronymNumber_AllFound()
    {
        var special = TermFrequencies.SpecialTokensOf("Call getUser in api/v1 with ID 42");

        Assert.Equal(new HashSet<string>(["getuser", "api/v1", "id", "42"]), special);
    }

    [Fact]
    public void Idf_TwoPrompts_AsHandComputed()
    {
        var terms = new TermFrequencies();
        terms.Add("a b");
        terms.Add("a c");

        // N = 2: ln((N + 1) / (df + 1)) + 1.
        Assert.Equal(1, terms.Idf("a"), 12);
        Assert.Equal(Math.Log(1.5) + 1, terms.Idf("b"), 12);
        Assert.Equal(Math.Log(3) + 1, terms.Idf("z"), 12);
    }

    [Fact]
    public void WeightedJaccard_TwoPrompts_SharedIdfOverUnionIdf()
    {
        var terms = new TermFrequencies();
        terms.Add("a b");
        terms.Add("a c");

        var overlap = terms.WeightedJaccard(TermFrequencies.TokensOf("a b"), TermFrequencies.TokensOf("a c"));

        // Shared {a}: idf 1; union {a, b, c}: 1 + 2 (ln 1.5 + 1).
        Assert.Equal(1 / (1 + (2 * (Math.Log(1.5) + 1))), overlap, 12);
    }

    [Fact]
    public void Remove_AfterAdds_SameAsBuiltFromScratch()
    {
        var incremental = new TermFrequencies();
        incremental.Add("a b");
        incremental.Add("a c");
        incremental.Add("b d d");
        incremental.Remove("a c");
        var scratch = new TermFrequencies();
        scratch.Add("a b");
        scratch.Add("b d d");

        Assert.Equal(scratch.Count, incremental.Count);
        foreach (var token in new[] { "a", "b", "c", "d", "z" })
        {
            Assert.Equal(scratch.DocumentFrequency(token), incremental.DocumentFrequency(token));
            Assert.Equal(scratch.Idf(token), incremental.Idf(token));
        }
        Assert.Equal(0, incremental.DocumentFrequency("c"));
        Assert.Equal(2, incremental.DocumentFrequency("b"));
    }

    [Fact]
    public void Coverage_HalfOfCachedSpecialTokensInQuery_OneHalf()
    {
        var coverage = TermFrequencies.Coverage(TermFrequencies.SpecialTokensOf("getUser for api/v1"), TermFrequencies.SpecialTokensOf("Call getUser in api/v1 with ID 42"));

        Assert.Equal(0.5, coverage);
    }

    [Fact]
    public void Coverage_CachedPromptWithoutSpecialTokens_One()
    {
        Assert.Equal(1, TermFrequencies.Coverage(TermFrequencies.SpecialTokensOf("api/v1"), TermFrequencies.SpecialTokensOf("open the file")));
    }
}
