using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Marginal.Bench.Stub;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Server.Wire;
using Microsoft.Extensions.AI;

namespace Marginal.Benchmarks;

/// <summary>
/// The way back to the client: a streamed answer of 50 text updates (plus the finish update, the usage chunk and
/// <c>[DONE]</c>) and a non-streamed completion, written into one <see cref="ArrayBufferWriter{T}"/> reused across
/// iterations, as Kestrel's pipe is. Baseline: the obvious implementation, building OpenAI's chunk objects and
/// serializing them with source-generated System.Text.Json.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class ChatResponseWritingBenchmarks
{
    private const int TextUpdates = 50;
    private static readonly DateTimeOffset Created = DateTimeOffset.FromUnixTimeSeconds(StubResponses.Created);

    private readonly ArrayBufferWriter<byte> _output = new(64 * 1024);
    private readonly TimeProvider _time = TimeProvider.System;
    private ChatResponseUpdate[] _updates = [];
    private UsageDetails _usage = new();
    private ChatResponse _response = new();

    [GlobalSetup]
    public void Setup()
    {
        // What the OpenAI adapter yields for a streamed answer: one update per token, then one with the finish reason.
        _updates = new ChatResponseUpdate[TextUpdates + 1];
        for (var i = 0; i < TextUpdates; i++)
        {
            _updates[i] = Update(new TextContent(StubResponses.Words[i % StubResponses.Words.Length]), finish: null);
        }
        _updates[TextUpdates] = Update(content: null, ChatFinishReason.Stop);
        _usage = new UsageDetails { InputTokenCount = StubResponses.PromptTokens, OutputTokenCount = TextUpdates, TotalTokenCount = StubResponses.PromptTokens + TextUpdates };
        _response = new ChatResponse(new ChatMessage(ChatRole.Assistant, StubResponses.Answer))
        {
            ResponseId = StubResponses.Id,
            ModelId = StubResponses.Model,
            CreatedAt = Created,
            FinishReason = ChatFinishReason.Stop,
            Usage = _usage,
        };
    }

    private static ChatResponseUpdate Update(AIContent? content, ChatFinishReason? finish) =>
        new(ChatRole.Assistant, content is null ? [] : [content])
        {
            ResponseId = StubResponses.Id,
            MessageId = StubResponses.Id,
            ModelId = StubResponses.Model,
            CreatedAt = Created,
            FinishReason = finish,
        };

    [Benchmark(Baseline = true, Description = "DTOs + JsonSerializer (source-generated)")]
    [BenchmarkCategory("stream: 50 updates + usage + [DONE]")]
    public int StreamWithSerializer()
    {
        _output.ResetWrittenCount();
        var roleSent = false;
        foreach (var update in _updates)
        {
            var chunk = new ChunkDto
            {
                Id = update.ResponseId!,
                Created = update.CreatedAt!.Value.ToUnixTimeSeconds(),
                Model = update.ModelId!,
                Choices = [new ChunkChoiceDto { Delta = new DeltaDto { Role = roleSent ? null : "assistant", Content = update.Text }, FinishReason = update.FinishReason?.Value }],
            };
            roleSent = true;
            WriteEvent(chunk, BaselineJsonContext.Default.ChunkDto);
        }
        WriteEvent(
            new ChunkDto { Id = StubResponses.Id, Created = StubResponses.Created, Model = StubResponses.Model, Choices = [], Usage = UsageDto.From(_usage) },
            BaselineJsonContext.Default.ChunkDto);
        _output.Write("data: [DONE]\n\n"u8);
        return _output.WrittenCount;
    }

    [Benchmark(Description = "ChatResponseWriter.WriteChunk/WriteUsageChunk/WriteDone")]
    [BenchmarkCategory("stream: 50 updates + usage + [DONE]")]
    public int StreamWithChatResponseWriter()
    {
        _output.ResetWrittenCount();
        using var state = new ChatResponseWriter.StreamState(StubResponses.Model, StubResponses.Created);
        foreach (var update in _updates)
        {
            ChatResponseWriter.WriteChunk(_output, update, state);
        }
        ChatResponseWriter.WriteUsageChunk(_output, _usage, state);
        ChatResponseWriter.WriteDone(_output);
        return _output.WrittenCount;
    }

    [Benchmark(Baseline = true, Description = "DTO + JsonSerializer (source-generated)")]
    [BenchmarkCategory("completion: one JSON object")]
    public int CompletionWithSerializer()
    {
        _output.ResetWrittenCount();
        var completion = new CompletionDto
        {
            Id = _response.ResponseId!,
            Created = _response.CreatedAt!.Value.ToUnixTimeSeconds(),
            Model = _response.ModelId!,
            Choices = [new CompletionChoiceDto { Message = new CompletionMessageDto { Content = _response.Text }, FinishReason = _response.FinishReason?.Value ?? "stop" }],
            Usage = UsageDto.From(_response.Usage!),
        };
        using var json = new Utf8JsonWriter(_output);
        JsonSerializer.Serialize(json, completion, BaselineJsonContext.Default.CompletionDto);
        return _output.WrittenCount;
    }

    [Benchmark(Description = "ChatResponseWriter.WriteCompletion")]
    [BenchmarkCategory("completion: one JSON object")]
    public int CompletionWithChatResponseWriter()
    {
        _output.ResetWrittenCount();
        ChatResponseWriter.WriteCompletion(_output, _response, StubResponses.Model, _time);
        return _output.WrittenCount;
    }

    private void WriteEvent<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo)
    {
        _output.Write("data: "u8);
        using (var json = new Utf8JsonWriter(_output))
        {
            JsonSerializer.Serialize(json, value, typeInfo);
        }
        _output.Write("\n\n"u8);
    }
}

// OpenAI's response objects as plain DTOs, for the baseline only.

public sealed class ChunkDto
{
    public required string Id { get; init; }
    [JsonPropertyName("object")]
    public string ObjectType { get; init; } = "chat.completion.chunk";
    public long Created { get; init; }
    public required string Model { get; init; }
    public required ChunkChoiceDto[] Choices { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public UsageDto? Usage { get; init; }
}

public sealed class ChunkChoiceDto
{
    public int Index { get; init; }
    public required DeltaDto Delta { get; init; }
    public object? Logprobs { get; init; }
    public string? FinishReason { get; init; }
}

public sealed class DeltaDto
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Role { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Content { get; init; }
}

public sealed class CompletionDto
{
    public required string Id { get; init; }
    [JsonPropertyName("object")]
    public string ObjectType { get; init; } = "chat.completion";
    public long Created { get; init; }
    public required string Model { get; init; }
    public required CompletionChoiceDto[] Choices { get; init; }
    public UsageDto? Usage { get; init; }
}

public sealed class CompletionChoiceDto
{
    public int Index { get; init; }
    public required CompletionMessageDto Message { get; init; }
    public object? Logprobs { get; init; }
    public required string FinishReason { get; init; }
}

public sealed class CompletionMessageDto
{
    public string Role { get; init; } = "assistant";
    public string? Content { get; init; }
    public string? Refusal { get; init; }
}

public sealed class UsageDto
{
    public long PromptTokens { get; init; }
    public long CompletionTokens { get; init; }
    public long TotalTokens { get; init; }
    public required TokenDetailsDto PromptTokensDetails { get; init; }
    public required TokenDetailsDto CompletionTokensDetails { get; init; }

    public static UsageDto From(UsageDetails usage) => new()
    {
        PromptTokens = usage.InputTokenCount ?? 0,
        CompletionTokens = usage.OutputTokenCount ?? 0,
        TotalTokens = usage.TotalTokenCount ?? 0,
        PromptTokensDetails = new TokenDetailsDto { CachedTokens = usage.CachedInputTokenCount ?? 0 },
        CompletionTokensDetails = new TokenDetailsDto { ReasoningTokens = usage.ReasoningTokenCount ?? 0 },
    };
}

public sealed class TokenDetailsDto
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public long CachedTokens { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public long ReasoningTokens { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ChunkDto))]
[JsonSerializable(typeof(CompletionDto))]
internal sealed partial class BaselineJsonContext : JsonSerializerContext;
