using System.Text;
using System.Text.Json.Nodes;

namespace Marginal.Server.Tests;

/// <summary>
/// Reads a server-sent event stream the way a strict client would: each event is <c>data: …</c> followed by a blank
/// line; comment lines (<c>: …</c>, the gateway's cost line) are skipped, as the SSE standard says.
/// </summary>
public static class SseEvents
{
    public static async Task<List<string>> ReadAsync(HttpResponseMessage response)
    {
        var raw = await response.Content.ReadAsStringAsync();
        var events = new List<string>();
        foreach (var block in raw.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            if (block.StartsWith(':'))
            {
                continue;
            }
            Assert.StartsWith("data: ", block, StringComparison.Ordinal);
            events.Add(block["data: ".Length..]);
        }
        Assert.EndsWith("\n\n", raw, StringComparison.Ordinal);
        return events;
    }

    /// <summary>
    /// Reads a stream the upstream holds after its first content chunk: waits until <paramref name="marker"/> has
    /// reached the client, then releases <paramref name="hold"/> and reads the rest. Returns the event payloads.
    /// </summary>
    public static async Task<List<string>> ReadReleasingAsync(HttpResponseMessage response, string marker, TaskCompletionSource hold)
    {
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var seen = new StringBuilder();
        while (!seen.ToString().Contains(marker, StringComparison.Ordinal))
        {
            seen.AppendLine(await reader.ReadLineAsync());
        }
        hold.SetResult();
        seen.Append(await reader.ReadToEndAsync());
        return seen.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith(':')).Select(l => l["data: ".Length..]).ToList();
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
