using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Marginal.Gateway.Wire.OpenAI;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// Thousands of random and mutated request bodies and headers against a real gateway on loopback: every answer is a
/// success or an OpenAI-format error, never a 500, a dropped connection or a hang. Seeded: a failure names the seed
/// and case, and the same run reproduces it.
/// </summary>
public sealed class FuzzTests : IAsyncLifetime
{
    private const int Seed = 20261128;
    private const int Cases = 10_000;
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static readonly string[] Seeds =
    [
        """{"model":"gpt-test","messages":[{"role":"user","content":"hello there"}]}""",
        """{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}""",
        """{"model":"gpt-test","temperature":0.5,"top_p":0.9,"max_tokens":20,"stop":["x"],"user":"u1","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}""",
        """{"model":"gpt-test","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"r"}]}""",
        """{"model":"gpt-test","response_format":{"type":"json_object"},"seed":1,"n":1,"messages":[{"role":"user","content":"json"}]}""",
        """{"model":"gpt-test","logprobs":true,"top_logprobs":2,"logit_bias":{"50256":-100},"messages":[{"role":"user","content":"hi"}]}""",
        """{"model":"gpt-test","response_format":{"type":"json_schema","json_schema":{"name":"n","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}}}}},"tools":[{"type":"function","function":{"name":"f","strict":true,"parameters":{"type":"object","description":"\ud83d\ude00"}}}],"messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"user","content":"x"}]}""",
        """{"model":"embed-test","input":"hello"}""",
        """{"model":"embed-test","input":["a","b"],"encoding_format":"float","dimensions":8}""",
        """{"model":"gpt-test","user":"u1","metadata":{"k":"v","team":"a"},"messages":[{"role":"user","content":"meta"}]}""",
        """{"model":"embed-test","input":"x","user":"u2"}""",
    ];

    private static readonly string[] Fragments =
    [
        "null", "true", "false", "0", "-1", "1e308", "-1e-308", "1.5", "\"\"", "\"x\"", "[]", "{}", "[null]", "{\"a\":1}",
        "\"\\u0000\"", "\"\\ud800\"", "99999999999999999999999", "NaN", "\"gpt-test\"", "\"embed-test\"", "\"stream\"",
        "{\"role\":\"user\"}", "[{\"role\":\"user\",\"content\":null}]", "[null,null]", "{\"50256\":-101}", "\"\\udc00\"", "\"no-such-model\"", "\"" + new string('a', 5000) + "\"",
        // Around the client string bounds (Wire/ClientBounds): 256, 512 and 64 characters and one more, metadata of 16 and 17 pairs.
        "\"" + new string('b', 256) + "\"", "\"" + new string('b', 257) + "\"", "\"" + new string('c', 513) + "\"",
        "{\"" + new string('k', 65) + "\":\"v\"}", "{\"k\":\"" + new string('v', 513) + "\"}",
        "{" + string.Join(",", Enumerable.Range(0, 16).Select(i => $"\"k{i}\":\"v\"")) + "}",
        "{" + string.Join(",", Enumerable.Range(0, 17).Select(i => $"\"k{i}\":\"v\"")) + "}",
    ];

    private static readonly string[] ContentTypes =
        ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", ""];

    private static (string Path, byte[] Body, string ContentType, List<(string, string)> Headers) Case(Random random)
    {
        var seed = Seeds[random.Next(Seeds.Length)];
        var path = seed.Contains("embed-test", StringComparison.Ordinal) ^ random.Next(10) == 0 ? "/v1/embeddings" : "/v1/chat/completions";
        if (random.Next(25) == 0)
        {
            // Feedback reads its own shape; any of these bodies is wrong for it, in every way the mutations make.
            path = "/v1/feedback";
        }
        var text = seed;
        for (var m = random.Next(1, 4); m > 0; m--)
        {
            text = random.Next(7) switch
            {
                // Swap one JSON value for another kind.
                0 => ReplaceValue(random, text),
                // Delete a span.
                1 when text.Length > 2 => DeleteSpan(random, text),
                // Insert a fragment anywhere.
                2 => text.Insert(random.Next(text.Length), Fragments[random.Next(Fragments.Length)]),
                // Truncate.
                3 => text[..random.Next(text.Length)],
                // Deep nesting.
                4 => text.Insert(text.IndexOf(':', StringComparison.Ordinal) + 1, new string('[', random.Next(1, 2000))),
                // Duplicate a key's member.
                5 => text.Replace("\"model\":", "\"model\":\"gpt-solo\",\"model\":", StringComparison.Ordinal),
                _ => text,
            };
        }
        var body = Encoding.UTF8.GetBytes(text);
        if (random.Next(8) == 0 && body.Length > 0)
        {
            // Raw byte flips: invalid UTF-8 included.
            for (var i = random.Next(1, 6); i > 0; i--)
            {
                body[random.Next(body.Length)] = (byte)random.Next(256);
            }
        }
        if (random.Next(50) == 0)
        {
            body = new byte[random.Next(0, 300)];
            random.NextBytes(body);
        }
        var headers = new List<(string, string)>();
        if (random.Next(4) == 0)
        {
            headers.Add(("Idempotency-Key", random.Next(3) switch { 0 => "", 1 => new string('k', random.Next(1, 2000)), _ => $"k{random.Next(100)}" }));
        }
        if (random.Next(6) == 0)
        {
            headers.Add(("x-marginal-cache", random.Next(2) == 0 ? "off" : "\"off;;=="));
        }
        if (random.Next(6) == 0)
        {
            // Tags around their bounds: 16 and 17 tags, 64 and 65 characters, empty entries.
            headers.Add(("x-marginal-tags", random.Next(4) switch
            {
                0 => string.Join(",", Enumerable.Range(0, random.Next(14, 19)).Select(i => $"t{i}")),
                1 => new string('t', random.Next(60, 70)),
                2 => ",, ,a,,",
                _ => "outcome:x," + new string('u', random.Next(1, 4000)),
            }));
        }
        if (random.Next(6) == 0)
        {
            headers.Add(("Authorization", random.Next(2) == 0 ? "Bearer mk-zz" : "Basic ???"));
        }
        return (path, body, ContentTypes[random.Next(ContentTypes.Length)], headers);
    }

    private static string DeleteSpan(Random random, string text)
    {
        var start = random.Next(text.Length - 1);
        return text.Remove(start, random.Next(1, Math.Min(20, text.Length - start)));
    }

    private static string ReplaceValue(Random random, string text)
    {
        var colon = text.IndexOf(':', random.Next(text.Length));
        if (colon < 0)
        {
            return text;
        }
        var end = colon + 1;
        while (end < text.Length && text[end] is not (',' or '}' or ']'))
        {
            end++;
        }
        return string.Concat(text.AsSpan(0, colon + 1), Fragments[random.Next(Fragments.Length)], text.AsSpan(end));
    }

    [Fact]
    public async Task Requests_RandomAndMutated_AlwaysSuccessOrOpenAIError()
    {
        var random = new Random(Seed);
        var cases = Enumerable.Range(0, Cases).Select(_ => Case(random)).ToArray();
        var failures = new ConcurrentQueue<string>();
        using var client = new HttpClient { BaseAddress = _host.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        var next = -1;

        await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < cases.Length)
            {
                var (path, body, contentType, headers) = cases[i];
                if (await CheckAsync(client, path, body, contentType, headers) is { } failure)
                {
                    failures.Enqueue($"seed {Seed} case {i} ({path}, {contentType}, {Encoding.UTF8.GetString(body[..Math.Min(200, body.Length)])}): {failure}");
                }
            }
        }));

        Assert.True(failures.IsEmpty, $"{failures.Count} of {Cases} failed; first: {string.Join("\n", failures.Take(5))}");
    }

    [Theory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/v1/embeddings")]
    public async Task Request_BodyOverTheLimit_RefusedWith413BeforeReading(string path)
    {
        // The test config allows 65,536 bytes.
        var body = Encoding.UTF8.GetBytes($$"""{"model":"gpt-test","messages":[{"role":"user","content":"{{new string('a', 200_000)}}"}]}""");

        var failure = await CheckAsync(_host.Http, path, body, "application/json", [], expect: HttpStatusCode.RequestEntityTooLarge);

        Assert.Null(failure);
    }

    private static async Task<string?> CheckAsync(HttpClient client, string path, byte[] body, string contentType, List<(string, string)> headers, HttpStatusCode? expect = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        if (contentType.Length > 0)
        {
            request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        HttpResponseMessage response;
        string text;
        try
        {
            response = await client.SendAsync(request);
            text = await response.Content.ReadAsStringAsync();
        }
        catch (Exception error) when (error is HttpRequestException or TaskCanceledException)
        {
            return $"no answer: {error.GetType().Name} {error.Message}";
        }
        using (response)
        {
            if (expect is { } expected && response.StatusCode != expected)
            {
                return $"status {(int)response.StatusCode}, expected {(int)expected}";
            }
            if (response.IsSuccessStatusCode)
            {
                return null;
            }
            if ((int)response.StatusCode >= 500 && response.StatusCode is not (HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout))
            {
                return $"status {(int)response.StatusCode}: {text[..Math.Min(300, text.Length)]}";
            }
            try
            {
                using var json = JsonDocument.Parse(text);
                var error = json.RootElement.GetProperty("error");
                if (error.GetProperty("message").ValueKind != JsonValueKind.String || !error.TryGetProperty("type", out _)
                    || !error.TryGetProperty("param", out _) || !error.TryGetProperty("code", out _))
                {
                    return $"status {(int)response.StatusCode}: error object incomplete: {text[..Math.Min(300, text.Length)]}";
                }
            }
            catch (Exception error) when (error is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                return $"status {(int)response.StatusCode}: not OpenAI error JSON: {text[..Math.Min(300, text.Length)]}";
            }
        }
        return null;
    }
}
