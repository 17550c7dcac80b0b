using System.Globalization;
using System.Text.Json;
using Marginal.Core.Requests;
using Marginal.Gateway.Buffers;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Caching;

/// <summary>
/// Cache keys: a SHA-256 over a normalised form of everything that changes the answer — the requested model, the
/// messages and every output-changing option — prefixed by the tenant, so no key is ever shared across tenants.
/// </summary>
public static class ResponseCacheKey
{
    private static readonly JsonSerializerOptions Json = AIJsonUtilities.DefaultOptions;

    /// <summary>The exact-cache key of a request.</summary>
    public static string Exact(string tenant, IReadOnlyList<ChatMessage> messages, ChatOptions options) =>
        string.Concat(tenant, ":", Body(messages, options));

    /// <summary>The exact key's hash alone (what a request asks, without its tenant), as 64 hex digits.</summary>
    public static string Body(IReadOnlyList<ChatMessage> messages, ChatOptions options) =>
        Hash("exact", messages, messages.Count, options);

    /// <summary>
    /// The semantic cache's scope: the same tenant, model, options and every message before the last user turn
    /// (system prompt included). Only the last turn is then compared by similarity.
    /// </summary>
    public static string SemanticScope(string tenant, IReadOnlyList<ChatMessage> messages, ChatOptions options) =>
        string.Concat(tenant, ":", Hash("semantic", messages, messages.Count - 1, options));

    private static string Hash(string kind, IReadOnlyList<ChatMessage> messages, int count, ChatOptions options)
    {
        // Hashed as it is written, through one pooled scratch buffer: no copy of the messages is kept. The bytes hashed
        // are the same as ever, so keys (and idempotency fingerprints) agree across nodes of different versions.
        using var buffer = new HashingBufferWriter();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("kind", kind);
            writer.WriteString("model", options.ModelId);
            WriteOptions(writer, options);
            writer.WriteStartArray("messages");
            var messageInfo = Json.GetTypeInfo(typeof(ChatMessage));
            for (var i = 0; i < count; i++)
            {
                JsonSerializer.Serialize(writer, messages[i], messageInfo);
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return Convert.ToHexStringLower(buffer.Hash());
    }

    private static void WriteOptions(Utf8JsonWriter writer, ChatOptions options)
    {
        WriteNumber(writer, "temperature", options.Temperature);
        WriteNumber(writer, "top_p", options.TopP);
        WriteNumber(writer, "top_k", options.TopK);
        WriteNumber(writer, "max_tokens", options.MaxOutputTokens);
        WriteNumber(writer, "frequency_penalty", options.FrequencyPenalty);
        WriteNumber(writer, "presence_penalty", options.PresencePenalty);
        WriteNumber(writer, "seed", options.Seed);
        if (options.StopSequences is { Count: > 0 } stops)
        {
            writer.WriteStartArray("stop");
            foreach (var stop in stops)
            {
                writer.WriteStringValue(stop);
            }
            writer.WriteEndArray();
        }
        switch (options.ResponseFormat)
        {
            case ChatResponseFormatJson json:
                writer.WriteString("response_format", "json");
                writer.WriteString("schema_name", json.SchemaName);
                writer.WriteString("schema", json.Schema?.GetRawText());
                break;
            case ChatResponseFormatText:
                writer.WriteString("response_format", "text");
                break;
        }
        if (options.Tools is { Count: > 0 } tools)
        {
            writer.WriteStartArray("tools");
            foreach (var tool in tools)
            {
                writer.WriteStringValue(tool.Name);
                writer.WriteStringValue(tool.Description);
                if (tool is AIFunctionDeclaration function)
                {
                    writer.WriteStringValue(function.JsonSchema.GetRawText());
                    if (function.AdditionalProperties.TryGetValue("strict", out var strict) && strict is bool isStrict)
                    {
                        writer.WriteBooleanValue(isStrict);
                    }
                }
            }
            writer.WriteEndArray();
        }
        switch (options.ToolMode)
        {
            case RequiredChatToolMode required:
                writer.WriteString("tool_choice", "required:" + required.RequiredFunctionName);
                break;
            case { } mode:
                writer.WriteString("tool_choice", mode.GetType().Name);
                break;
        }
        if (options.AllowMultipleToolCalls is { } parallel)
        {
            writer.WriteBoolean("parallel_tool_calls", parallel);
        }
        if (options.Reasoning?.Effort is { } effort)
        {
            writer.WriteString("reasoning", effort.ToString());
        }
        if (options.Instructions is { } instructions)
        {
            writer.WriteString("instructions", instructions);
        }
        if (options.AdditionalProperties is { Count: > 0 } extra)
        {
            foreach (var (name, value) in extra.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (name != GatewayContext.PropertyKey)
                {
                    writer.WriteString("x:" + name, Convert.ToString(value, CultureInfo.InvariantCulture));
                }
            }
        }
    }

    private static void WriteNumber(Utf8JsonWriter writer, string name, double? value)
    {
        if (value is { } number)
        {
            writer.WriteNumber(name, number);
        }
    }
}
