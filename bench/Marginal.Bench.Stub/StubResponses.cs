using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Marginal.Bench.Stub;

/// <summary>
/// The fixed answers the load-test upstream serves, built once at start-up: one <c>chat.completion</c> object and
/// the same answer as a server-sent event stream (role chunk, one chunk per word, finish chunk, usage chunk,
/// <c>[DONE]</c>), shaped like OpenAI's own. The benchmarks link this file too, so in-process and whole-system
/// figures parse the same bytes.
/// </summary>
public static class StubResponses
{
    public const string Id = "chatcmpl-bench0000000000000000000000000";
    public const string Model = "gpt-4o-mini-2024-07-18";
    public const long Created = 1_735_689_600; // 2025-01-01T00:00:00Z; fixed so every run serves identical bytes.
    public const int PromptTokens = 42;

    /// <summary>The answer, 41 words; each word (with its leading space) is one streamed chunk.</summary>
    public const string Answer =
        "Marginal routes each request to the cheapest model that meets its quality bar, caches repeated prompts, " +
        "and records the cost, revenue and margin of every call, so that the unit economics of inference are " +
        "visible for each tenant, model and provider.";

    public static readonly string[] Words = SplitWords(Answer);

    public static int CompletionTokens => Words.Length;

    /// <summary>The non-streamed response body.</summary>
    public static readonly byte[] Completion = BuildCompletion();

    /// <summary>The streamed response body, all events together.</summary>
    public static readonly byte[] Stream = BuildStream();

    private static string[] SplitWords(string text)
    {
        var words = new List<string>();
        var start = 0;
        for (var i = 1; i <= text.Length; i++)
        {
            if (i == text.Length || text[i] == ' ')
            {
                words.Add(text[start..i]);
                start = i;
            }
        }
        return [.. words];
    }

    private static byte[] BuildCompletion()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("id", Id);
            json.WriteString("object", "chat.completion");
            json.WriteNumber("created", Created);
            json.WriteString("model", Model);
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("message");
            json.WriteString("role", "assistant");
            json.WriteString("content", Answer);
            json.WriteNull("refusal");
            json.WriteStartArray("annotations");
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteNull("logprobs");
            json.WriteString("finish_reason", "stop");
            json.WriteEndObject();
            json.WriteEndArray();
            WriteUsage(json);
            json.WriteString("service_tier", "default");
            json.WriteString("system_fingerprint", "fp_bench");
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] BuildStream()
    {
        var buffer = new ArrayBufferWriter<byte>();
        WriteEvent(buffer, json => WriteDelta(json, role: "assistant", content: "", finish: null));
        foreach (var word in Words)
        {
            WriteEvent(buffer, json => WriteDelta(json, role: null, content: word, finish: null));
        }
        WriteEvent(buffer, json => WriteDelta(json, role: null, content: null, finish: "stop"));
        WriteEvent(buffer, json =>
        {
            WriteChunkHeader(json);
            json.WriteStartArray("choices");
            json.WriteEndArray();
            WriteUsage(json);
            json.WriteEndObject();
        });
        buffer.Write("data: [DONE]\n\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteEvent(ArrayBufferWriter<byte> buffer, Action<Utf8JsonWriter> write)
    {
        buffer.Write("data: "u8);
        using (var json = new Utf8JsonWriter(buffer))
        {
            write(json);
        }
        buffer.Write("\n\n"u8);
    }

    private static void WriteChunkHeader(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("id", Id);
        json.WriteString("object", "chat.completion.chunk");
        json.WriteNumber("created", Created);
        json.WriteString("model", Model);
        json.WriteString("service_tier", "default");
        json.WriteString("system_fingerprint", "fp_bench");
    }

    private static void WriteDelta(Utf8JsonWriter json, string? role, string? content, string? finish)
    {
        WriteChunkHeader(json);
        json.WriteStartArray("choices");
        json.WriteStartObject();
        json.WriteNumber("index", 0);
        json.WriteStartObject("delta");
        if (role is not null)
        {
            json.WriteString("role", role);
        }
        if (content is not null)
        {
            json.WriteString("content", content);
        }
        if (role is not null)
        {
            json.WriteNull("refusal");
        }
        json.WriteEndObject();
        json.WriteNull("logprobs");
        if (finish is null)
        {
            json.WriteNull("finish_reason");
        }
        else
        {
            json.WriteString("finish_reason", finish);
        }
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteNull("usage");
        json.WriteEndObject();
    }

    private static void WriteUsage(Utf8JsonWriter json)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", PromptTokens);
        json.WriteNumber("completion_tokens", CompletionTokens);
        json.WriteNumber("total_tokens", PromptTokens + CompletionTokens);
        json.WriteStartObject("prompt_tokens_details");
        json.WriteNumber("cached_tokens", 0);
        json.WriteNumber("audio_tokens", 0);
        json.WriteEndObject();
        json.WriteStartObject("completion_tokens_details");
        json.WriteNumber("reasoning_tokens", 0);
        json.WriteNumber("audio_tokens", 0);
        json.WriteNumber("accepted_prediction_tokens", 0);
        json.WriteNumber("rejected_prediction_tokens", 0);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>Prints the bodies, so a reader can see exactly what the upstream sends.</summary>
    public static string Describe() =>
        Encoding.UTF8.GetString(Completion) + "\n\n" + Encoding.UTF8.GetString(Stream);
}
