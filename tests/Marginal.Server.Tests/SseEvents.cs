using System.Text;
using System.Text.Json.Nodes;

namespace Marginal.Server.Tests;

/// <summary>Reads a server-sent event stream the way a strict client would: each event is <c>data: …</c> followed by a blank line.</summary>
public static class SseEvents
{
    public static async Task<List<string>> ReadAsync(HttpResponseMessage response)
    {
        var raw = await response.Content.ReadAsStringAsync();
        var events = new List<string>();
        foreach (var block in raw.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.StartsWith("data: ", block, StringComparison.Ordinal);
            events.Add(block["data: ".Length..]);
        }
        Assert.EndsWith("\n\n", raw, StringComparison.Ordinal);
        return events;
    }

    /// <summary>The concatenated <c>delta.content</c> of all chunks.</summary>
    public static string Text(IEnumerable<string> events)
    {
        var text = new StringBuilder();
        foreach (var e in events)
        {
            if (e == "[DONE]")
            {
                continue;
            }
            var node = JsonNode.Parse(e)!;
            if (node["choices"] is JsonArray { Count: > 0 } choices)
            {
                text.Append(choices[0]!["delta"]?["content"]?.GetValue<string>());
            }
        }
        return text.ToString();
    }
}
