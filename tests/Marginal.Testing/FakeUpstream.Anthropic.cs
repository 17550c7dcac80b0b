using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Marginal.Testing;

/// <summary>
/// Anthropic's Messages API (<c>POST /v1/messages</c>), JSON and SSE, with the same deterministic answers as the
/// OpenAI side: "Echo: &lt;last user text&gt;", a call of the first offered tool with <c>{"echo": …}</c>, and
/// "Tool said: &lt;result&gt;" after a <c>tool_result</c>. Usage is word counts, plus fixed prompt-cache counts
/// (<see cref="AnthropicCacheReadTokens"/>, <see cref="AnthropicCacheCreationTokens"/>) so their mapping shows.
/// </summary>
public sealed partial class FakeUpstream
{
    /// <summary>The <c>cache_read_input_tokens</c> every Anthropic answer reports.</summary>
    public const long AnthropicCacheReadTokens = 2;

    /// <summary>The <c>cache_creation_input_tokens</c> every Anthropic answer reports.</summary>
    public const long AnthropicCacheCreationTokens = 1;

    /// <summary>
    /// When true, Anthropic answers say their cache write was made with the 1-hour lifetime
    /// (<c>usage.cache_creation.ephemeral_1h_input_tokens</c>); otherwise <c>cache_creation</c> is left out, as in
    /// API versions before it existed.
    /// </summary>
    public bool AnthropicOneHourCacheWrites { get; set; }

    /// <summary>The id the fake gives its <c>tool_use</c> blocks.</summary>
    public const string AnthropicToolUseId = "toolu_fake1";

    private async Task AnthropicMessagesAsync(HttpContext http)
    {
        var (request, fault) = await ReceiveAsync(http);
        // The real API refuses a request without a key (x-api-key, or Authorization: Bearer) or a version before reading the body.
        if (!http.Request.Headers.ContainsKey("x-api-key") && !http.Request.Headers.ContainsKey("authorization"))
        {
            await WriteStatusFaultAsync(http, new Fault(FaultKind.Status, 401, Message: "x-api-key header is required"), anthropic: true);
            return;
        }
        if (!http.Request.Headers.ContainsKey("anthropic-version"))
        {
            await WriteStatusFaultAsync(http, new Fault(FaultKind.Status, 400, Message: "anthropic-version: header is required"), anthropic: true);
            return;
        }
        if (fault is { Kind: FaultKind.Status })
        {
            await WriteStatusFaultAsync(http, fault, anthropic: true);
            return;
        }
        if (request["max_tokens"] is null)
        {
            await WriteStatusFaultAsync(http, new Fault(FaultKind.Status, 400, Message: "max_tokens: Field required"), anthropic: true);
            return;
        }
        var stream = request["stream"]?.GetValue<bool>() == true;
        if (fault is { Kind: FaultKind.MalformedJson })
        {
            http.Response.ContentType = stream ? "text/event-stream" : "application/json";
            await http.Response.WriteAsync(stream
                ? "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\n\n"
                : """{"id":"msg_broken","type":"message","role":"assistant","content":[{"type":""");
            return;
        }
        var model = request["model"]?.GetValue<string>() ?? "unknown";
        var reply = PlanAnthropic(request);
        var id = "msg_fake" + Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture);
        if (stream)
        {
            await StreamAnthropicAsync(http, model, id, reply, fault);
            return;
        }
        var body = AnthropicMessage(model, id, reply);
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(body.ToJsonString());
    }

    /// <summary>A whole (non-streamed) Messages API answer.</summary>
    private JsonObject AnthropicMessage(string model, string id, AnthropicReply reply)
    {
        var content = new JsonArray();
        if (reply.ToolName is not null)
        {
            content.Add(new JsonObject
            {
                ["type"] = "tool_use",
                ["id"] = AnthropicToolUseId,
                ["name"] = reply.ToolName,
                ["input"] = JsonNode.Parse(reply.ToolArguments!),
            });
        }
        else
        {
            content.Add(new JsonObject { ["type"] = "text", ["text"] = reply.Text });
        }
        var body = new JsonObject
        {
            ["id"] = id,
            ["type"] = "message",
            ["role"] = "assistant",
            ["model"] = model,
            ["content"] = content,
            ["stop_reason"] = reply.FinishReason,
            ["stop_sequence"] = reply.StopSequence,
            ["usage"] = AnthropicUsage(reply.PromptTokens, reply.CompletionTokens),
        };
        return body;
    }

    /// <summary>
    /// Streams the answer as Anthropic's events. <see cref="Fault.AfterChunks"/> counts events here, so
    /// <c>AfterChunks: 1</c> stops right after <c>message_start</c>.
    /// </summary>
    private async Task StreamAnthropicAsync(HttpContext http, string model, string id, AnthropicReply reply, Fault? fault)
    {
        http.Response.ContentType = "text/event-stream";
        var events = new List<(string Name, JsonObject Data)>
        {
            ("message_start", new JsonObject
            {
                ["type"] = "message_start",
                ["message"] = new JsonObject
                {
                    ["id"] = id,
                    ["type"] = "message",
                    ["role"] = "assistant",
                    ["model"] = model,
                    ["content"] = new JsonArray(),
                    ["stop_reason"] = null,
                    ["stop_sequence"] = null,
                    ["usage"] = AnthropicUsage(reply.PromptTokens, 1),
                },
            }),
        };
        var block = reply.ToolName is not null
            ? new JsonObject { ["type"] = "tool_use", ["id"] = AnthropicToolUseId, ["name"] = reply.ToolName, ["input"] = new JsonObject() }
            : new JsonObject { ["type"] = "text", ["text"] = "" };
        events.Add(("content_block_start", new JsonObject { ["type"] = "content_block_start", ["index"] = 0, ["content_block"] = block }));
        events.Add(("ping", new JsonObject { ["type"] = "ping" }));
        var firstDelta = events.Count;
        if (reply.ToolName is not null)
        {
            // Anthropic sends the tool input as JSON fragments, starting with an empty one.
            var arguments = reply.ToolArguments!;
            var half = arguments.Length / 2;
            foreach (var fragment in new[] { "", arguments[..half], arguments[half..] })
            {
                events.Add(("content_block_delta", new JsonObject
                {
                    ["type"] = "content_block_delta",
                    ["index"] = 0,
                    ["delta"] = new JsonObject { ["type"] = "input_json_delta", ["partial_json"] = fragment },
                }));
            }
        }
        else
        {
            foreach (var piece in Pieces(reply.Text!))
            {
                events.Add(("content_block_delta", new JsonObject
                {
                    ["type"] = "content_block_delta",
                    ["index"] = 0,
                    ["delta"] = new JsonObject { ["type"] = "text_delta", ["text"] = piece },
                }));
            }
        }
        events.Add(("content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = 0 }));
        events.Add(("message_delta", new JsonObject
        {
            ["type"] = "message_delta",
            ["delta"] = new JsonObject { ["stop_reason"] = reply.FinishReason, ["stop_sequence"] = reply.StopSequence },
            // As in Anthropic's documented example: the delta carries only the cumulative output count.
            ["usage"] = new JsonObject { ["output_tokens"] = reply.CompletionTokens },
        }));
        events.Add(("message_stop", new JsonObject { ["type"] = "message_stop" }));

        for (var i = 0; i < events.Count; i++)
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
            await http.Response.WriteAsync($"event: {events[i].Name}\ndata: {events[i].Data.ToJsonString()}\n\n");
            await http.Response.Body.FlushAsync();
            if (i == firstDelta && HoldAfterFirstChunk is { } hold)
            {
                await hold.Task.WaitAsync(http.RequestAborted);
            }
            if (ChunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(ChunkDelay);
            }
        }
    }

    private JsonObject AnthropicUsage(long input, long output)
    {
        var usage = new JsonObject
        {
            ["input_tokens"] = input,
            ["cache_creation_input_tokens"] = AnthropicCacheCreationTokens,
            ["cache_read_input_tokens"] = AnthropicCacheReadTokens,
            ["output_tokens"] = output,
        };
        if (AnthropicOneHourCacheWrites)
        {
            usage["cache_creation"] = new JsonObject { ["ephemeral_5m_input_tokens"] = 0, ["ephemeral_1h_input_tokens"] = AnthropicCacheCreationTokens };
        }
        return usage;
    }

    /// <summary>What the fake will answer on the Messages API; <see cref="FinishReason"/> holds Anthropic's <c>stop_reason</c>.</summary>
    private sealed record AnthropicReply(string? Text, string? ToolName, string? ToolArguments, string FinishReason, string? StopSequence, long PromptTokens, long CompletionTokens);

    private AnthropicReply PlanAnthropic(JsonNode request)
    {
        var messages = request["messages"]!.AsArray();
        var promptTokens = Words(AnthropicText(request["system"])) + messages.Sum(m => Words(AnthropicText(m?["content"])));
        var last = messages[^1]!;
        var lastRole = last["role"]?.GetValue<string>();
        var toolResult = ToolResultOf(last["content"]);
        var tools = request["tools"]?.AsArray();
        var toolChoice = request["tool_choice"]?["type"]?.GetValue<string>();
        if (lastRole == "user" && toolResult is null && tools is { Count: > 0 } && toolChoice != "none")
        {
            var name = tools[0]!["name"]!.GetValue<string>();
            var arguments = new JsonObject { ["echo"] = AnthropicText(last["content"]) }.ToJsonString();
            return new AnthropicReply(null, name, arguments, "tool_use", null, promptTokens, 5);
        }
        var text = ReplyText ?? (toolResult is not null
            ? "Tool said: " + toolResult
            : "Echo: " + AnthropicText(last["content"]));
        var stopReason = "end_turn";
        string? stopSequence = null;
        foreach (var sequence in request["stop_sequences"]?.AsArray() ?? [])
        {
            var value = sequence!.GetValue<string>();
            var at = text.IndexOf(value, StringComparison.Ordinal);
            if (at >= 0)
            {
                text = text[..at].TrimEnd();
                stopReason = "stop_sequence";
                stopSequence = value;
                break;
            }
        }
        var limit = request["max_tokens"]!.GetValue<int>();
        if (Words(text) > limit)
        {
            text = string.Join(' ', text.Split(' ').Take(limit));
            stopReason = "max_tokens";
            stopSequence = null;
        }
        return new AnthropicReply(text, null, null, stopReason, stopSequence, promptTokens, Words(text));
    }

    /// <summary>The text of Anthropic content: a string, or blocks whose text (and tool results' text) is joined.</summary>
    private static string AnthropicText(JsonNode? content) => content switch
    {
        JsonArray blocks => string.Join(" ", blocks.Select(b => b?["type"]?.GetValue<string>() switch
        {
            "text" => b["text"]?.GetValue<string>(),
            "tool_result" => AnthropicText(b["content"]),
            _ => null,
        }).Where(t => !string.IsNullOrEmpty(t))),
        _ => ContentText(content),
    };

    /// <summary>The text of the first <c>tool_result</c> block, or null when the content has none.</summary>
    private static string? ToolResultOf(JsonNode? content) =>
        content is JsonArray blocks && blocks.FirstOrDefault(b => b?["type"]?.GetValue<string>() == "tool_result") is { } result
            ? AnthropicText(result["content"])
            : null;
}
