using System.Text;
using System.Text.Json;
using Marginal.Gateway.Buffers;
using Marginal.Gateway.Caching;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Tests.Pipeline;

public sealed class LargeJsonTests
{
    /// <summary>A long text with escapes, non-ASCII and surrogate pairs, one of them across the first segment boundary.</summary>
    private static string LongText()
    {
        var text = new StringBuilder();
        text.Append('a', 16 * 1024 - 1).Append("😀").Append("\"quoted\"\n\\ é 中文 ");
        while (text.Length < 200_000)
        {
            text.Append("line ").Append(text.Length).Append(" 🎉\t\"x\"\n");
        }
        return text.ToString();
    }

    [Fact]
    public void WriteString_LongText_SameBytesAsOneWrite()
    {
        var text = LongText();
        using var segmented = new PooledBufferWriter();
        using (var json = new Utf8JsonWriter(segmented))
        {
            json.WriteStartObject();
            LargeJson.WriteString(json, "content"u8, text);
            json.WriteEndObject();
        }
        var whole = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(whole))
        {
            json.WriteStartObject();
            json.WriteString("content"u8, text);
            json.WriteEndObject();
        }

        Assert.Equal(whole.WrittenSpan.ToArray(), segmented.WrittenMemory.ToArray());
        Assert.Equal(text, JsonDocument.Parse(segmented.WrittenMemory).RootElement.GetProperty("content").GetString());
    }

    [Fact]
    public void CacheKey_LongTexts_SameTextSameKey_OneCharacterApartDifferentKeys()
    {
        var text = LongText();
        var options = new ChatOptions { ModelId = "m" };
        string Key(string t) => ResponseCacheKey.Exact("acme", [new ChatMessage(ChatRole.System, "be brief"), new ChatMessage(ChatRole.User, t)], options);

        Assert.Equal(Key(text), Key(new string(text.AsSpan())));
        Assert.NotEqual(Key(text), Key(text[..^1] + "?"));
        Assert.NotEqual(Key(text), Key(text + " "));
    }
}
