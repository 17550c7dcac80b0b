using System.Diagnostics;
using System.Text.Json.Nodes;
using Marginal.Core.Ledger;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// <c>/v1/responses</c> and <c>/v1/messages</c> as the official JavaScript SDKs call them (openai 7.60.0 and
/// @anthropic-ai/sdk 1.17.0, installed by <c>npm ci</c> from tests/sdk-js/package-lock.json): plain, streamed, tools,
/// structured output, token counting and typed errors, against the real gateway in front of an OpenAI-format fake; and
/// every answered call recorded and priced in the ledger like a chat completion.
/// </summary>
public sealed class DialectSdkTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Responses_Plain_ReturnsOutputTextAndUsage()
    {
        var result = await NodeSdk.RunAsync("responses-plain", _host.BaseUrl, "gpt-test");
        Assert.Equal("completed", (string?)result["status"]);
        Assert.Equal("Echo: Say hello", (string?)result["text"]);
        Assert.True((int)result["usage"]!["input_tokens"]! > 0);
        Assert.Equal((int)result["usage"]!["input_tokens"]! + (int)result["usage"]!["output_tokens"]!, (int)result["usage"]!["total_tokens"]!);
        var upstream = _host.Primary.Requests.Last(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal)).Json!;
        Assert.Equal("system", (string?)upstream["messages"]![0]!["role"]);
        Assert.Equal(64, (int)upstream["max_completion_tokens"]!);
    }

    [Fact]
    public async Task Responses_Streamed_TypedEventsAndTheHelpersFinalResponse()
    {
        var result = await NodeSdk.RunAsync("responses-stream", _host.BaseUrl, "gpt-test");
        var types = result["types"]!.AsArray().Select(t => (string?)t).ToList();
        Assert.Equal("response.created", types[0]);
        Assert.Contains("response.output_text.delta", types);
        Assert.Equal("response.completed", types[^1]);
        Assert.Equal("Echo: Stream me", (string?)result["text"]);
        Assert.True((int)result["usage"]!["output_tokens"]! > 0);
        Assert.Equal("Echo: Helper stream", (string?)result["helperText"]);
    }

    [Fact]
    public async Task Responses_ToolRoundTrip_CallThenAnswerFromTheOutput()
    {
        var result = await NodeSdk.RunAsync("responses-tools", _host.BaseUrl, "gpt-test");
        Assert.Equal("weather", (string?)result["call"]!["name"]);
        Assert.NotNull(JsonNode.Parse((string)result["call"]!["arguments"]!));
        Assert.Equal("Tool said: 18C and sunny", (string?)result["text"]);
        var upstream = _host.Primary.Requests.Last(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal)).Json!;
        Assert.True((bool)upstream["tools"]![0]!["function"]!["strict"]!);
        Assert.Equal("tool", (string?)upstream["messages"]!.AsArray()[^1]!["role"]);
    }

    [Fact]
    public async Task Responses_JsonSchema_ReachesTheUpstreamAsResponseFormat()
    {
        var result = await NodeSdk.RunAsync("responses-json-schema", _host.BaseUrl, "gpt-test");
        Assert.Equal("completed", (string?)result["status"]);
        var upstream = _host.Primary.Requests.Last(r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal)).Json!;
        Assert.Equal("json_schema", (string?)upstream["response_format"]!["type"]);
        Assert.True((bool)upstream["response_format"]!["json_schema"]!["strict"]!);
    }

    [Fact]
    public async Task Responses_PreviousResponseId_IsABadRequestNamingIt()
    {
        var result = await NodeSdk.RunAsync("responses-store", _host.BaseUrl, "gpt-test");
        Assert.Equal("BadRequestError", (string?)result["error"]);
        Assert.Equal(400, (int)result["status"]!);
        Assert.Equal("previous_response_id", (string?)result["param"]);
    }

    [Fact]
    public async Task Messages_Create_AnyConfiguredModelAnswersInAnthropicsShape()
    {
        var result = await NodeSdk.RunAsync("messages-create", _host.BaseUrl, "gpt-test");
        Assert.Equal("message", (string?)result["type"]);
        Assert.Equal("end_turn", (string?)result["stop_reason"]);
        Assert.Equal("Echo: Say hello", (string?)result["text"]);
        Assert.True((int)result["usage"]!["output_tokens"]! > 0);
    }

    [Fact]
    public async Task Messages_Stream_EventSequenceAndFinalMessage()
    {
        var result = await NodeSdk.RunAsync("messages-stream", _host.BaseUrl, "gpt-test");
        var types = result["types"]!.AsArray().Select(t => (string?)t).ToList();
        Assert.Equal("message_start", types[0]);
        Assert.Equal("message_stop", types[^1]);
        Assert.Contains("content_block_delta", types);
        Assert.Equal("Echo: Stream me", (string?)result["text"]);
        Assert.Equal("Echo: Stream me", (string?)result["finalText"]);
        Assert.True((int)result["usage"]!["output_tokens"]! > 0);
    }

    [Fact]
    public async Task Messages_ToolRoundTrip_ToolUseThenToolResult()
    {
        var result = await NodeSdk.RunAsync("messages-tools", _host.BaseUrl, "gpt-test");
        Assert.Equal("tool_use", (string?)result["stop_reason"]);
        Assert.Equal("weather", (string?)result["use"]!["name"]);
        Assert.Equal("Tool said: 18C and sunny", (string?)result["text"]);
    }

    [Fact]
    public async Task Messages_CountTokens_CountsThePrompt()
    {
        var result = await NodeSdk.RunAsync("messages-count", _host.BaseUrl, "gpt-test");
        Assert.InRange((int)result["input_tokens"]!, 8, 40);
    }

    [Fact]
    public async Task Messages_UnsupportedField_IsAnAnthropicBadRequest()
    {
        var result = await NodeSdk.RunAsync("messages-error", _host.BaseUrl, "gpt-test");
        Assert.Equal("BadRequestError", (string?)result["error"]);
        Assert.Equal("invalid_request_error", (string?)result["type"]);
        Assert.Contains("top_k", (string?)result["message"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Responses_DotNetSdk_PlainAndStreamed()
    {
#pragma warning disable OPENAI001 // the SDK marks its Responses client experimental
        var client = new OpenAI.Responses.ResponsesClient(new System.ClientModel.ApiKeyCredential("sk-test"),
            new OpenAI.Responses.ResponsesClientOptions { Endpoint = new Uri(_host.BaseUrl, "/v1"), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) });
        var plain = await client.CreateResponseAsync(new OpenAI.Responses.CreateResponseOptions("gpt-test", [OpenAI.Responses.ResponseItem.CreateUserMessageItem("From dotnet")]));
        Assert.Equal("Echo: From dotnet", plain.Value.GetOutputText());
        Assert.True(plain.Value.Usage.OutputTokenCount > 0);
        var text = new System.Text.StringBuilder();
        var options = new OpenAI.Responses.CreateResponseOptions("gpt-test", [OpenAI.Responses.ResponseItem.CreateUserMessageItem("Streamed dotnet")]) { StreamingEnabled = true };
        await foreach (var update in await client.CreateResponseStreamingAsync(options))
        {
            if (update is OpenAI.Responses.StreamingResponseOutputTextDeltaUpdate delta)
            {
                text.Append(delta.Delta);
            }
        }
#pragma warning restore OPENAI001
        Assert.Equal("Echo: Streamed dotnet", text.ToString());
    }

    [Fact]
    public async Task BothDialects_AreRecordedAndPricedLikeChat()
    {
        await NodeSdk.RunAsync("responses-plain", _host.BaseUrl, "gpt-test");
        await NodeSdk.RunAsync("messages-create", _host.BaseUrl, "gpt-test");
        var records = new List<UsageRecord>();
        await foreach (var record in _host.Ledger.ReadAsync(DateTimeOffset.UnixEpoch))
        {
            records.Add(record);
        }
        Assert.Equal(2, records.Count(r => r.Kind == UsageRecordKinds.Usage));
        Assert.All(records, r => Assert.True(r.CostUsd > 0));
        Assert.All(records, r => Assert.Equal("gpt-test", r.RequestedModel));
    }
}

/// <summary>Runs tests/sdk-js/dialects.mjs (installing its packages from the lockfile on first use) and parses its JSON line.</summary>
internal static class NodeSdk
{
    private static readonly SemaphoreSlim Install = new(1, 1);
    private static bool _installed;

    public static async Task<JsonNode> RunAsync(string scenario, Uri gateway, string model)
    {
        var dir = Path.Combine(RepoRoot(), "tests", "sdk-js");
        await EnsureInstalledAsync(dir);
        var (code, stdout, stderr) = await RunProcessAsync(dir, "node", ["dialects.mjs", scenario, gateway.ToString().TrimEnd('/'), model], TimeSpan.FromSeconds(60));
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        Assert.True(code == 0 && line is not null, $"node dialects.mjs {scenario} exited {code}: {stdout} {stderr}");
        return JsonNode.Parse(line!)!;
    }

    private static async Task EnsureInstalledAsync(string dir)
    {
        await Install.WaitAsync();
        try
        {
            if (_installed || Directory.Exists(Path.Combine(dir, "node_modules", "openai")) && Directory.Exists(Path.Combine(dir, "node_modules", "@anthropic-ai", "sdk")))
            {
                _installed = true;
                return;
            }
            var (code, stdout, stderr) = await RunProcessAsync(dir, "npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], TimeSpan.FromMinutes(5));
            Assert.True(code == 0, $"npm ci in tests/sdk-js failed ({code}): {stdout} {stderr}");
            _installed = true;
        }
        finally
        {
            Install.Release();
        }
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunProcessAsync(string dir, string file, string[] args, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran past {timeout}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Marginal.slnx")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("Marginal.slnx not found above the test binaries");
    }
}
