using System.ClientModel;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Marginal.Core.Ledger;
using Marginal.Gateway.Embeddings;
using Marginal.Gateway.Routing.Learning;
using OpenAI.Chat;

namespace Marginal.Server.Tests.Apis;

/// <summary>
/// Route aliases through the real gateway and the official OpenAI SDK. Strong model: <c>gpt-test</c> on the primary fake
/// (USD 2 in / 8 out per 1M tokens); weak: <c>gpt-backup</c> on the secondary (1 in / 4 out). The fakes count a word as a token.
/// </summary>
public sealed class RoutingTests : IAsyncLifetime
{
    private const string France = "What is the capital of France?";
    private const string Primes = "Prove that there are infinitely many primes of the form 4k+3.";

    private readonly string _routerFile = Path.Combine(Path.GetTempPath(), $"marginal-router-test-{Guid.NewGuid():N}.json");
    private readonly string _mfFile = Path.Combine(Path.GetTempPath(), $"marginal-router-mf-test-{Guid.NewGuid():N}.json");
    private GatewayHost _host = null!;

    public async Task InitializeAsync()
    {
        // A one-neighbour kNN router: the France question is fine on the weak model, the primes proof needs the strong one.
        var vectors = MiniLmEmbeddingGenerator.Shared.Embed([France, Primes]);
        RouterModelFile.Save(_routerFile, new KnnScorer(vectors, [0f, 1f], k: 1), new RouterModelFile.Header(0.5, "test"));
        // A one-dimensional matrix factorisation whose projection is (primes − France): the strong model wins the primes
        // proof with probability σ(4 (1 − cos)) > ½ and the France question with σ(−4 (1 − cos)) < ½.
        var row = vectors[1].Zip(vectors[0], (p, f) => p - f).Append(0f).ToArray();
        RouterModelFile.Save(_mfFile, new MfScorer([row], [0f], [1f], [-1f], [2f]), new RouterModelFile.Header(0.5, "test"));
        _host = await GatewayHost.StartAsync((p, s) => GatewayHost.DefaultYaml(p, s, $"""
            routes:
              auto:
                strong: gpt-test
                weak: gpt-backup
                policies:
                  - name: greeting
                    last_user_matches: "(?i)^hello"
                    model: weak
                  - name: tools
                    tools: true
                    model: strong
              learned:
                strong: gpt-test
                weak: gpt-backup
                learned:
                  model: {_routerFile}
                  threshold: 0.4
              learned-mf:
                strong: gpt-test
                weak: gpt-backup
                learned:
                  model: {_mfFile}
              careful:
                strong: gpt-test
                weak: gpt-backup
                cascade:
                  checks: [json_schema, refusal]
              graded:
                strong: gpt-test
                weak: gpt-backup
                cascade:
                  checks: [verifier]
                  verifier:
                    model: gpt-solo
                    min_score: 7
              guarded:
                strong: gpt-test
                weak: gpt-backup
                cascade:
                  checks: [refusal]
                no_downgrade_tenants: [default]
            """));
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        File.Delete(_routerFile);
        File.Delete(_mfFile);
    }

    private async Task<(ClientResult<ChatCompletion> Result, UsageRecord Record)> ChatAsync(string model, string text, ChatCompletionOptions? options = null)
    {
        var result = await _host.OpenAI.GetChatClient(model).CompleteChatAsync([new UserChatMessage(text)], options);
        var id = Header(result, "x-marginal-request-id");
        return (result, (await _host.Ledger.FindAsync(id))!);
    }

    private static string Header<T>(ClientResult<T> result, string name) =>
        result.GetRawResponse().Headers.TryGetValue(name, out var value) ? value! : "";

    [Fact]
    public async Task Chat_PolicyRuleMatches_ServesItsModelAndRecordsAliasReasonAndSaving()
    {
        var (result, record) = await ChatAsync("auto", "Hello there");

        Assert.Equal("policy:greeting", Header(result, "x-marginal-route"));
        Assert.Equal("gpt-backup", Header(result, "x-marginal-model"));
        Assert.Equal(("auto", "gpt-backup", "policy:greeting"), (record.RequestedModel, record.ServedModel, record.RouteReason));
        // 2 prompt and 3 output tokens: strong 2×2 + 3×8 = 28, weak 2×1 + 3×4 = 14 (USD per 1M), saving 14e-6.
        Assert.Equal(0.000014m, record.CostUsd);
        Assert.Equal(0.000014m, record.SavingsUsd);
        Assert.StartsWith("routing=", record.Levers, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_PolicyRouteStreamed_RecordsSavingFromTheStreamedAnswer()
    {
        var text = new StringBuilder();

        await foreach (var update in _host.OpenAI.GetChatClient("auto").CompleteChatStreamingAsync([new UserChatMessage("Hello there")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Equal("Echo: Hello there", text.ToString());
        var record = await _host.Ledger.ReadAsync().SingleAsync();
        Assert.Equal(("auto", "gpt-backup", "policy:greeting", true), (record.RequestedModel, record.ServedModel, record.RouteReason, record.Streamed));
        // The strong model's prices are twice the weak one's for input and output alike, so the saving equals the cost.
        Assert.True(record.CostUsd > 0);
        Assert.Equal(record.CostUsd, record.SavingsUsd);
    }

    [Fact]
    public async Task Chat_NoRuleMatches_ServesTheDefaultStrongModelWithoutSaving()
    {
        var (result, record) = await ChatAsync("auto", "Summarise the quarterly report");

        Assert.Equal("default", Header(result, "x-marginal-route"));
        Assert.Equal(("auto", "gpt-test"), (record.RequestedModel, record.ServedModel));
        Assert.Null(record.SavingsUsd);
        Assert.Equal("", record.Levers);
    }

    [Fact]
    public async Task Chat_ToolsPresent_FirstMatchingRuleWins()
    {
        var options = new ChatCompletionOptions { Tools = { ChatTool.CreateFunctionTool("lookup", "Looks things up.") } };

        var (result, _) = await ChatAsync("auto", "please look it up", options);

        Assert.Equal("policy:tools", Header(result, "x-marginal-route"));
        Assert.Equal("gpt-test", Header(result, "x-marginal-model"));
    }

    [Fact]
    public async Task Chat_LearnedRouter_SendsEachPromptToTheModelItsNeighbourNeeds()
    {
        var (easy, _) = await ChatAsync("learned", France);
        var (hard, _) = await ChatAsync("learned", Primes);

        Assert.Equal(("learned:0", "gpt-backup"), (Header(easy, "x-marginal-route"), Header(easy, "x-marginal-model")));
        Assert.Equal(("learned:1", "gpt-test"), (Header(hard, "x-marginal-route"), Header(hard, "x-marginal-model")));
    }

    [Fact]
    public async Task Chat_MfRouter_SendsOnlyThePromptTheStrongModelWinsToIt()
    {
        var (easy, easyRecord) = await ChatAsync("learned-mf", France);
        var (hard, hardRecord) = await ChatAsync("learned-mf", Primes);

        Assert.Equal("gpt-backup", Header(easy, "x-marginal-model"));
        Assert.Equal("gpt-test", Header(hard, "x-marginal-model"));
        Assert.StartsWith("learned:0.", Header(easy, "x-marginal-route"), StringComparison.Ordinal);
        Assert.Equal(("learned-mf", "gpt-backup", "learned-mf", "gpt-test"), (easyRecord.RequestedModel, easyRecord.ServedModel, hardRecord.RequestedModel, hardRecord.ServedModel));
    }

    [Fact]
    public async Task Feedback_BadScoreOnDowngradedRequest_SendsTheSamePromptToTheStrongModelNextTime()
    {
        var (first, _) = await ChatAsync("learned", France);
        Assert.Equal("gpt-backup", Header(first, "x-marginal-model"));

        var feedback = await _host.Http.PostAsJsonAsync("/v1/feedback", new { request_id = Header(first, "x-marginal-request-id"), score = 0.0 });
        feedback.EnsureSuccessStatusCode();
        var (second, record) = await ChatAsync("learned", France);

        // (0 + 1·1) / (1 + 1) = 0.5, above the threshold 0.4: the strong model.
        Assert.Equal(("learned:0.5", "gpt-test"), (Header(second, "x-marginal-route"), Header(second, "x-marginal-model")));
        Assert.Equal("gpt-test", record.ServedModel);
    }

    [Fact]
    public async Task Feedback_BadScoreThenServerRestarted_DecisionStillReflectsIt()
    {
        var (first, _) = await ChatAsync("learned", France);
        var feedback = await _host.Http.PostAsJsonAsync("/v1/feedback", new { request_id = Header(first, "x-marginal-request-id"), score = 0.0 });
        feedback.EnsureSuccessStatusCode();

        await _host.RestartAsync();
        var (second, record) = await ChatAsync("learned", France);

        // The label was rebuilt from the stored embedding and its feedback row: (0 + 1·1) / (1 + 1) = 0.5 > 0.4.
        Assert.Equal(("learned:0.5", "gpt-test"), (Header(second, "x-marginal-route"), Header(second, "x-marginal-model")));
        Assert.Equal("gpt-test", record.ServedModel);
    }

    [Fact]
    public async Task Chat_CascadeWeakAnswerFailsSchema_EscalatesAndRecordsBothCosts()
    {
        _host.Secondary.ReplyText = "not json";
        _host.Primary.ReplyText = """{"answer":42}""";
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("answer", BinaryData.FromString("""
                {"type":"object","properties":{"answer":{"type":"integer"}},"required":["answer"],"additionalProperties":false}
                """)),
        };

        var (result, record) = await ChatAsync("careful", "Give the answer as JSON.", options);

        Assert.Equal("""{"answer":42}""", result.Value.Content[0].Text);
        Assert.Equal("cascade:escalated:json_schema", Header(result, "x-marginal-route"));
        Assert.Equal(("careful", "gpt-test", 2), (record.RequestedModel, record.ServedModel, record.Attempts));
        Assert.Single(_host.Secondary.Requests);
        Assert.Single(_host.Primary.Requests);
        // 5 prompt tokens. Weak: 5×1 + 2×4 = 13; strong: 5×2 + 1×8 = 18 (USD per 1M). Both are paid; the saving
        // against the strong model alone is −13e-6.
        Assert.Equal(0.000031m, record.CostUsd);
        Assert.Equal(-0.000013m, record.SavingsUsd);
    }

    [Fact]
    public async Task Chat_CascadeWeakAnswerPasses_ServesTheWeakAnswerOnly()
    {
        _host.Secondary.ReplyText = """{"answer":41}""";

        var (result, record) = await ChatAsync("careful", "Give the answer as JSON.", new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat() });

        Assert.Equal("cascade:accepted", Header(result, "x-marginal-route"));
        Assert.Equal("gpt-backup", record.ServedModel);
        Assert.Empty(_host.Primary.Requests);
        // Weak 5×1 + 1×4 = 9, strong would be 5×2 + 1×8 = 18: saving 9e-6.
        Assert.Equal(0.000009m, record.SavingsUsd);
    }

    [Fact]
    public async Task Chat_CascadeWeakAnswerRefuses_EscalatesOnAStream()
    {
        _host.Secondary.ReplyText = "I'm sorry, but I can't help with that.";
        var updates = new StringBuilder();

        await foreach (var update in _host.OpenAI.GetChatClient("careful").CompleteChatStreamingAsync([new UserChatMessage("Explain the tax rule.")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                updates.Append(part.Text);
            }
        }

        Assert.Equal("Echo: Explain the tax rule.", updates.ToString());
        var record = await _host.Ledger.ReadAsync().SingleAsync();
        Assert.Equal(("cascade:escalated:refusal", "gpt-test", true), (record.RouteReason, record.ServedModel, record.Streamed));
    }

    [Theory]
    [InlineData("3", "cascade:escalated:verifier", "gpt-test", 3)]
    [InlineData("9", "cascade:accepted", "gpt-backup", 2)]
    public async Task Chat_CascadeVerifierGrades_EscalatesBelowTheMinimumScore(string grade, string reason, string served, int attempts)
    {
        // The primary fake serves both the verifier (gpt-solo) and the strong model; it answers everything with the grade.
        _host.Secondary.ReplyText = "A cheap answer.";
        _host.Primary.ReplyText = grade;

        var (result, record) = await ChatAsync("graded", "Explain compound interest.");

        Assert.Equal(reason, Header(result, "x-marginal-route"));
        Assert.Equal((served, attempts), (record.ServedModel, record.Attempts));
        var grading = _host.Primary.Requests.First().Json!;
        Assert.Equal("solo-model", grading["model"]!.GetValue<string>());
        Assert.Contains("A cheap answer.", grading["messages"]![1]!["content"]!.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_TenantWithDowngradesDisabled_GetsTheStrongModelOnly()
    {
        _host.Secondary.ReplyText = """{"cheap":true}""";

        var (result, record) = await ChatAsync("guarded", "Anything at all");

        Assert.Equal("no-downgrade", Header(result, "x-marginal-route"));
        Assert.Equal("gpt-test", record.ServedModel);
        Assert.Empty(_host.Secondary.Requests);
    }

    [Fact]
    public async Task Models_ListsRouteAliasesBesideModels()
    {
        var list = JsonNode.Parse(await _host.Http.GetStringAsync("/v1/models"))!["data"]!.AsArray();
        var auto = list.Single(m => m!["id"]!.GetValue<string>() == "auto")!;
        var one = JsonNode.Parse(await _host.Http.GetStringAsync("/v1/models/careful"))!;

        Assert.Equal(("route", "gpt-test", "gpt-backup"), (auto["type"]!.GetValue<string>(), auto["strong"]!.GetValue<string>(), auto["weak"]!.GetValue<string>()));
        Assert.Equal("careful", one["id"]!.GetValue<string>());
    }
}
