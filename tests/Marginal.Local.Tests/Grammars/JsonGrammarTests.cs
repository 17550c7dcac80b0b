using System.Text.Json;
using Marginal.Core.Errors;
using Marginal.Local.Grammars;

namespace Marginal.Local.Tests.Grammars;

public sealed class JsonGrammarTests
{
    private static JsonElement Schema(string json) => JsonDocument.Parse(json).RootElement;

    [Theory]
    [InlineData("""{"type":"object","properties":{"a":{"anyOf":[{"type":"string"}]}}}""", "'anyOf'", "#/properties/a")]
    [InlineData("""{"type":"string","format":"date-time"}""", "'format'", "the schema's root")]
    [InlineData("""{"type":"array","items":{"type":"integer","minimum":3}}""", "'minimum'", "#/items")]
    public void ForSchema_KeywordOutsideTheSubset_RefusedNamingKeywordAndPlace(string schema, string keyword, string place)
    {
        var error = Assert.Throws<GatewayException>(() => JsonGrammar.ForSchema(Schema(schema), "response_format.json_schema.schema"));

        Assert.Equal(GatewayErrorKind.InvalidRequest, error.Kind);
        Assert.Equal("response_format.json_schema.schema", error.Param);
        Assert.Equal("unsupported_schema", error.Code);
        Assert.Contains(keyword, error.Message, StringComparison.Ordinal);
        Assert.Contains(place, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ForSchema_RequiredPropertyNotListed_Refused()
    {
        var error = Assert.Throws<GatewayException>(() =>
            JsonGrammar.ForSchema(Schema("""{"type":"object","properties":{"a":{"type":"string"}},"required":["a","b"]}"""), "p"));

        Assert.Equal("invalid_schema", error.Code);
        Assert.Contains("'b'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ForSchema_UnknownType_Refused()
    {
        var error = Assert.Throws<GatewayException>(() => JsonGrammar.ForSchema(Schema("""{"type":"date"}"""), "p"));

        Assert.Contains("'date' is not a JSON Schema type", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ForSchema_EnumWithQuotesAndBackslashes_LiteralsEscapedForGbnf()
    {
        var grammar = JsonGrammar.ForSchema(Schema("""{"enum":["say \"hi\"", "a\\b", 3]}"""), "p");

        // The JSON text "say \"hi\"" as a GBNF literal: every quote and backslash escaped once more.
        Assert.Contains("""
            "\"say \\\"hi\\\"\"" space
            """.Trim(), grammar, StringComparison.Ordinal);
        Assert.Contains("\"3\" space", grammar, StringComparison.Ordinal);
    }

    [Fact]
    public void ForSchema_StringLimit_BoundsOnlyStringsWithoutTheirOwn()
    {
        var grammar = JsonGrammar.ForSchema(Schema("""{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string","maxLength":40}}}"""), "p", stringLimit: 9);

        Assert.Contains("json-char{0,9}", grammar, StringComparison.Ordinal);
        Assert.Contains("json-char{0,40}", grammar, StringComparison.Ordinal);
    }
}
