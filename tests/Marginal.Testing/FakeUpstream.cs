using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Marginal.Testing;

/// <summary>What a <see cref="FakeUpstream"/> does wrong on the next request it gets.</summary>
public enum FaultKind
{
    /// <summary>Answer with <see cref="Fault.Status"/>, an error body in the wire format, and Retry-After when set.</summary>
    Status,
    /// <summary>Wait <see cref="Fault.Delay"/> before answering normally.</summary>
    Delay,
    /// <summary>Answer 200 with a body that is not valid JSON.</summary>
    MalformedJson,
    /// <summary>Stream <see cref="Fault.AfterChunks"/> chunks, then reset the connection.</summary>
    ResetMidStream,
    /// <summary>Stream <see cref="Fault.AfterChunks"/> chunks, then end the response cleanly but without a finish reason or [DONE].</summary>
    TruncatedStream,
    /// <summary>A non-streamed answer: headers with the full Content-Length and half the body, then reset the connection.</summary>
    ResetMidBody,
}

public sealed record Fault(FaultKind Kind, int Status = 500, string? RetryAfter = null, TimeSpan Delay = default, int AfterChunks = 1, string Message = "The upstream failed on purpose.");

/// <summary>A request the fake received: path, headers and the raw JSON body.</summary>
public sealed record RecordedRequest(string Path, IReadOnlyDictionary<string, string> Headers, string Body)
{
    public JsonNode? Json => string.IsNullOrEmpty(Body) ? null : JsonNode.Parse(Body);
}

/// <summary>
/// A real Kestrel server on a random loopback port that speaks OpenAI's chat completions, embeddings and models
/// wire format (JSON and SSE), and Anthropic's Messages API, with faults on demand. Its answers are deterministic:
/// it echoes the last user message, calls the first offered tool once, and reports usage as word counts.
/// </summary>
public sealed partial class FakeUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Fault> _faults = new();

    private FakeUpstream(WebApplication app)
    {
        _app = app;
    }

    /// <summary>Base URL of the OpenAI-style API, ending in <c>/v1</c>.</summary>
    public Uri OpenAIBaseUrl { get; private set; } = null!;

    /// <summary>Base URL for Anthropic's SDK (it appends <c>/v1/messages</c>).</summary>
    public Uri AnthropicBaseUrl { get; private set; } = null!;

    /// <summary>Every request received, in order.</summary>
    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    /// <summary>Delay between streamed chunks.</summary>
    public TimeSpan ChunkDelay { get; set; }

    /// <summary>When set, a stream pauses after its first content chunk until this completes: proof that nothing downstream buffers.</summary>
    public TaskCompletionSource? HoldAfterFirstChunk { get; set; }

    /// <summary>Replaces the default echo reply with a fixed text when set.</summary>
    public string? ReplyText { get; set; }

    /// <summary>Prompt tokens reported as read from the provider's cache (OpenAI's <c>prompt_tokens_details.cached_tokens</c>).</summary>
    public long CachedTokens { get; set; }

    /// <summary>
    /// When true, cached prompt tokens are reported the way DeepSeek's API does (<c>prompt_cache_hit_tokens</c> and
    /// <c>prompt_cache_miss_tokens</c> beside <c>prompt_tokens</c>) instead of OpenAI's <c>prompt_tokens_details</c>.
    /// </summary>
    public bool DeepSeekCacheUsage { get; set; }

    /// <summary>When true the fake reports no <c>usage</c> at all, like some OpenAI-compatible servers.</summary>
    public bool OmitUsage { get; set; }

    /// <summary>
    /// Close the connection once each chat answer has been sent, without a <c>Connection: close</c> header (as an
    /// HTTP/1.0 server without keep-alive does): the client learns of it only when the FIN arrives.
    /// </summary>
    public bool CloseAfterEachAnswer { get; set; }

    /// <summary>The next request gets <paramref name="fault"/>; queue several for several requests.</summary>
    public void Enqueue(Fault fault) => _faults.Enqueue(fault);

    public static async Task<FakeUpstream> StartAsync(int port = 0, bool record = true)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        var fake = new FakeUpstream(app) { _record = record };
        app.MapPost("/v1/chat/completions", fake.ChatCompletionsAsync);
        app.MapPost("/v1/embeddings", fake.EmbeddingsAsync);
        app.MapGet("/v1/models", () => Results.Text("""{"object":"list","data":[{"id":"fake-model","object":"model","created":0,"owned_by":"fake"}]}""", "application/json"));
        app.MapPost("/v1/messages", fake.AnthropicMessagesAsync);
        fake.MapBatchApi(app);
        fake.MapMessageBatchApi(app);
        await app.StartAsync();
        var address = new Uri(app.Urls.First());
        fake.OpenAIBaseUrl = new Uri($"http://127.0.0.1:{address.Port}/v1");
        fake.AnthropicBaseUrl = new Uri($"http://127.0.0.1:{address.Port}");
        return fake;
    }

    private bool _record = true;

    private async Task<(JsonNode Body, Fault? Fault)> ReceiveAsync(HttpContext http)
    {
        using var reader = new StreamReader(http.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync();
        if (_record)
        {
            var headers = http.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
            Requests.Enqueue(new RecordedRequest(http.Request.Path, headers, body));
        }
        _faults.TryDequeue(out var fault);
        if (fault is { Kind: FaultKind.Delay })
        {
            await Task.Delay(fault.Delay, http.RequestAborted);
        }
        return (JsonNode.Parse(body)!, fault);
    }

    private static async Task WriteStatusFaultAsync(HttpContext http, Fault fault, bool anthropic)
    {
        http.Response.StatusCode = fault.Status;
        if (fault.RetryAfter is not null)
        {
            http.Response.Headers.RetryAfter = fault.RetryAfter;
        }
        http.Response.ContentType = "application/json";
        var body = anthropic
            ? new JsonObject { ["type"] = "error", ["error"] = new JsonObject { ["type"] = AnthropicErrorType(fault.Status), ["message"] = fault.Message } }
            : new JsonObject { ["error"] = new JsonObject { ["message"] = fault.Message, ["type"] = fault.Status == 429 ? "rate_limit_error" : "server_error", ["param"] = null, ["code"] = null } };
        await http.Response.WriteAsync(body.ToJsonString());
    }

    private static string AnthropicErrorType(int status) => status switch
    {
        400 => "invalid_request_error",
        401 => "authentication_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };

    private async Task ChatCompletionsAsync(HttpContext http)
    {
        var (request, fault) = await ReceiveAsync(http);
        if (fault is { Kind: FaultKind.Status })
        {
            await WriteStatusFaultAsync(http, fault, anthropic: false);
            return;
        }
        if (fault is { Kind: FaultKind.MalformedJson })
        {
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync("""{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":{"role":""");
            return;
        }
        var model = request["model"]?.GetValue<string>() ?? "unknown";
        var reply = EmulatePromptCache ? WithPromptCache(request, Plan(request)) : Plan(request);
        var id = "chatcmpl-fake" + Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture);
        if (request["stream"]?.GetValue<bool>() == true)
        {
            await StreamOpenAIAsync(http, request, model, id, reply, fault);
            return;
        }
        var body = CompletionBody(model, id, reply);
        if (reply.Text is { } text && LogprobsOf(request, text) is { } logprobs)
        {
            body["choices"]![0]!["logprobs"] = logprobs;
        }
        http.Response.ContentType = "application/json";
        if (fault is { Kind: FaultKind.ResetMidBody })
        {
            var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
            http.Response.ContentLength = bytes.Length;
            await http.Response.Body.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
            await http.Response.Body.FlushAsync();
            http.Abort();
            return;
        }
        await http.Response.WriteAsync(body.ToJsonString());
        if (CloseAfterEachAnswer)
        {
            await http.Response.CompleteAsync();
            http.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeNotificationFeature>()?.RequestClose();
        }
    }

    private long _ids;

    /// <summary>A non-streamed chat completion body for <paramref name="reply"/>.</summary>
    private JsonObject CompletionBody(string model, string id, Reply reply)
    {
        var message = new JsonObject { ["role"] = "assistant", ["content"] = reply.Text, ["refusal"] = null };
        if (reply.ToolName is not null)
        {
            message["tool_calls"] = new JsonArray(new JsonObject
            {
                ["id"] = "call_fake1",
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = reply.ToolName, ["arguments"] = reply.ToolArguments },
            });
        }
        var body = new JsonObject
        {
            ["id"] = id,
            ["object"] = "chat.completion",
            ["created"] = 1_700_000_000,
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = message, ["logprobs"] = null, ["finish_reason"] = reply.FinishReason }),
        };
        if (!OmitUsage)
        {
            body["usage"] = Usage(reply);
        }
        return body;
    }

    private async Task StreamOpenAIAsync(HttpContext http, JsonNode request, string model, string id, Reply reply, Fault? fault)
    {
        http.Response.ContentType = "text/event-stream";
        var chunks = new List<JsonObject> { Chunk(id, model, new JsonObject { ["role"] = "assistant", ["content"] = "" }, null) };
        if (reply.ToolName is not null)
        {
            chunks.Add(Chunk(id, model, new JsonObject
            {
                ["tool_calls"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0, ["id"] = "call_fake1", ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = reply.ToolName, ["arguments"] = "" },
                }),
            }, null));
            chunks.Add(Chunk(id, model, new JsonObject
            {
                ["tool_calls"] = new JsonArray(new JsonObject { ["index"] = 0, ["function"] = new JsonObject { ["arguments"] = reply.ToolArguments } }),
            }, null));
        }
        else
        {
            foreach (var piece in Pieces(reply.Text!))
            {
                var chunk = Chunk(id, model, new JsonObject { ["content"] = piece }, null);
                if (LogprobsOf(request, piece) is { } logprobs)
                {
                    chunk["choices"]![0]!["logprobs"] = logprobs;
                }
                chunks.Add(chunk);
            }
        }
        chunks.Add(Chunk(id, model, new JsonObject(), reply.FinishReason));
        if (request["stream_options"]?["include_usage"]?.GetValue<bool>() == true && !OmitUsage)
        {
            var usage = Chunk(id, model, null, null);
            usage["usage"] = Usage(reply);
            chunks.Add(usage);
        }
        for (var i = 0; i < chunks.Count; i++)
        {
            if (fault is { Kind: FaultKind.ResetMidStream or FaultKind.TruncatedStream } && i == fault.AfterChunks)
            {
                await http.Response.Body.FlushAsync();
                if (fault.Kind == FaultKind.ResetMidStream)
                {
                    http.Abort();
                }
                return;
            }
            await http.Response.WriteAsync($"data: {chunks[i].ToJsonString()}\n\n");
            await http.Response.Body.FlushAsync();
            if (i == 1 && HoldAfterFirstChunk is { } hold)
            {
                await hold.Task.WaitAsync(http.RequestAborted);
            }
            if (ChunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(ChunkDelay);
            }
        }
        await http.Response.WriteAsync("data: [DONE]\n\n");
    }

    /// <summary>
    /// OpenAI's <c>logprobs</c> of a choice when the request asked for them: one entry for the whole text, with
    /// <c>top_logprobs</c> alternatives, log-probabilities made up but well-formed.
    /// </summary>
    private static JsonObject? LogprobsOf(JsonNode request, string text)
    {
        if (request["logprobs"]?.GetValue<bool>() != true)
        {
            return null;
        }
        var top = new JsonArray();
        for (var i = 0; i < (request["top_logprobs"]?.GetValue<int>() ?? 0); i++)
        {
            top.Add(new JsonObject { ["token"] = $"alt{i}", ["logprob"] = -1.0 - i, ["bytes"] = new JsonArray([.. "alt"u8.ToArray().Select(b => JsonValue.Create((int)b))]) });
        }
        return new JsonObject
        {
            ["content"] = new JsonArray(new JsonObject
            {
                ["token"] = text,
                ["logprob"] = -0.25,
                ["bytes"] = new JsonArray([.. Encoding.UTF8.GetBytes(text).Select(b => JsonValue.Create((int)b))]),
                ["top_logprobs"] = top,
            }),
            ["refusal"] = null,
        };
    }

    private static JsonObject Chunk(string id, string model, JsonObject? delta, string? finishReason) => new()
    {
        ["id"] = id,
        ["object"] = "chat.completion.chunk",
        ["created"] = 1_700_000_000,
        ["model"] = model,
        ["choices"] = delta is null ? new JsonArray() : new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = finishReason }),
    };

    private static IEnumerable<string> Pieces(string text)
    {
        var words = text.Split(' ');
        for (var i = 0; i < words.Length; i++)
        {
            yield return i == 0 ? words[i] : " " + words[i];
        }
    }

    /// <summary>What the fake will answer: text, or a call of the first offered tool.</summary>
    private sealed record Reply(string? Text, string? ToolName, string? ToolArguments, string FinishReason, long PromptTokens, long CompletionTokens, long? CachedPromptTokens = null);

    private Reply Plan(JsonNode request)
    {
        var messages = request["messages"]!.AsArray();
        var promptTokens = messages.Sum(m => Words(ContentText(m?["content"])));
        var last = messages[^1]!;
        var lastRole = last["role"]?.GetValue<string>();
        var tools = request["tools"]?.AsArray();
        var toolChoice = request["tool_choice"];
        if (lastRole == "user" && tools is { Count: > 0 } && toolChoice?.ToString() != "none")
        {
            var name = tools[0]!["function"]!["name"]!.GetValue<string>();
            var arguments = new JsonObject { ["echo"] = ContentText(last["content"]) }.ToJsonString();
            return new Reply(null, name, arguments, "tool_calls", promptTokens, 5);
        }
        var text = ReplyText ?? (lastRole == "tool"
            ? "Tool said: " + ContentText(last["content"])
            : "Echo: " + ContentText(last["content"]));
        var limit = request["max_completion_tokens"] ?? request["max_tokens"];
        var finish = "stop";
        if (limit is not null && Words(text) > limit.GetValue<int>())
        {
            text = string.Join(' ', text.Split(' ').Take(limit.GetValue<int>()));
            finish = "length";
        }
        return new Reply(text, null, null, finish, promptTokens, Words(text));
    }

    private JsonObject Usage(Reply reply)
    {
        var cached = reply.CachedPromptTokens ?? Math.Min(CachedTokens, reply.PromptTokens);
        var usage = new JsonObject
        {
            ["prompt_tokens"] = reply.PromptTokens,
            ["completion_tokens"] = reply.CompletionTokens,
            ["total_tokens"] = reply.PromptTokens + reply.CompletionTokens,
        };
        if (DeepSeekCacheUsage)
        {
            usage["prompt_cache_hit_tokens"] = cached;
            usage["prompt_cache_miss_tokens"] = reply.PromptTokens - cached;
        }
        else
        {
            usage["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = cached };
            usage["completion_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0 };
        }
        return usage;
    }

    internal static string ContentText(JsonNode? content) => content switch
    {
        null => "",
        JsonValue value => value.ToString(),
        JsonArray parts => string.Join(" ", parts.Select(p => p?["text"]?.ToString()).Where(t => t is not null)),
        _ => content.ToJsonString(),
    };

    internal static long Words(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;

    private async Task EmbeddingsAsync(HttpContext http)
    {
        var (request, fault) = await ReceiveAsync(http);
        if (fault is { Kind: FaultKind.Status })
        {
            await WriteStatusFaultAsync(http, fault, anthropic: false);
            return;
        }
        var inputs = request["input"] is JsonArray array ? array.Select(i => i!.ToString()).ToList() : [request["input"]!.ToString()];
        var dimensions = request["dimensions"]?.GetValue<int>() ?? 8;
        var base64 = request["encoding_format"]?.ToString() == "base64";
        var data = new JsonArray();
        for (var i = 0; i < inputs.Count; i++)
        {
            var vector = Embed(inputs[i], dimensions);
            JsonNode embedding = base64
                ? JsonValue.Create(Convert.ToBase64String(MemoryMarshal.AsBytes(vector.AsSpan())))
                : new JsonArray(vector.Select(v => (JsonNode)JsonValue.Create(v)).ToArray());
            data.Add(new JsonObject { ["object"] = "embedding", ["index"] = i, ["embedding"] = embedding });
        }
        var tokens = inputs.Sum(Words);
        var body = new JsonObject
        {
            ["object"] = "list",
            ["data"] = data,
            ["model"] = request["model"]?.ToString(),
            ["usage"] = new JsonObject { ["prompt_tokens"] = tokens, ["total_tokens"] = tokens },
        };
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(body.ToJsonString());
    }

    /// <summary>A deterministic vector for a text: the same text always gives the same vector.</summary>
    public static float[] Embed(string text, int dimensions)
    {
        var vector = new float[dimensions];
        for (var i = 0; i < text.Length; i++)
        {
            vector[i % dimensions] += text[i] / 128f;
        }
        return vector;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
