using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Marginal.Cli.Tests.Commands;

public sealed class KeysAndReportCommandTests() : UpstreamWorkspace("keys")
{
    private static StringContent Chat(string text) =>
        new($$"""{"model":"deepseek-chat","messages":[{"role":"user","content":"{{text}}"}]}""", Encoding.UTF8, "application/json");

    [Fact]
    public async Task KeysCreate_KeyWorksAgainstServe_ReportShowsTenantAndCost()
    {
        var (exit, keyText, _) = await MarginalProcess.RunAsync(WorkDir, "keys", "create", "--tenant", "acme", "--config", ConfigPath);
        Assert.Equal(0, exit);
        var (process, http) = await MarginalProcess.ServeAsync(WorkDir, ConfigPath);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Chat("one two three") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", keyText.Trim());
            var ok = await http.SendAsync(request);
            var refused = await http.PostAsync("/v1/chat/completions", Chat("no key"));

            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            http.Dispose();
        }

        var (reportExit, json, _) = await MarginalProcess.RunAsync(WorkDir, "report", "--by", "tenant", "--format", "json", "--config", ConfigPath);

        Assert.Equal(0, reportExit);
        var acme = JsonNode.Parse(json)!["rows"]!.AsArray().Single(r => r!["group"]!.GetValue<string>() == "acme")!;
        Assert.Equal(1, acme["requests"]!.GetValue<long>());
        // Shipped price book, deepseek-chat at 0.56 in / 1.68 out per 1M; the fake reports a token per word:
        // prompt "one two three" = 3, completion "Echo: one two three" = 4.
        var input = acme["input_tokens"]!.GetValue<long>();
        var output = acme["output_tokens"]!.GetValue<long>();
        Assert.Equal((3L, 4L), (input, output));
        Assert.Equal((3 * 0.56m + 4 * 1.68m) / 1_000_000m, decimal.Parse(acme["cost_usd"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task KeysListAndRevoke_ListShowsStateWithoutSecret()
    {
        var (_, keyText, _) = await MarginalProcess.RunAsync(WorkDir, "keys", "create", "--tenant", "globex", "--expires", "30d", "--config", ConfigPath);
        var id = keyText.Trim()[3..15];

        var (revokeExit, _, _) = await MarginalProcess.RunAsync(WorkDir, "keys", "revoke", id, "--config", ConfigPath);
        var (listExit, list, _) = await MarginalProcess.RunAsync(WorkDir, "keys", "list", "--config", ConfigPath);

        Assert.Equal((0, 0), (revokeExit, listExit));
        Assert.Contains(id, list, StringComparison.Ordinal);
        Assert.Contains("revoked", list, StringComparison.Ordinal);
        Assert.DoesNotContain(keyText.Trim()[16..], list, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("keys revoke 000000000000", "marginal keys revoke: id: no key '000000000000' (see marginal keys list)")]
    [InlineData("report --since yesterdayish", "marginal report: --since: 'yesterdayish' is not a time (allowed: an ISO-8601 date or time such as 2026-11-27 or 2026-11-27T10:00Z, or an age such as 30m, 24h, 7d)")]
    [InlineData("report --by colour", "marginal report: --by: 'colour' is not allowed (allowed: tenant, model, provider, key)")]
    [InlineData("keys create --tenant x --expires soon", "marginal keys create: --expires: 'soon' is not a time (allowed: an ISO-8601 date or time such as 2026-11-27 or 2026-11-27T10:00Z, or an age such as 30m, 24h, 7d)")]
    public async Task BadArguments_OneLineAndExitCode2(string args, string message)
    {
        var (exit, _, stderr) = await MarginalProcess.RunAsync(WorkDir, [.. args.Split(' '), "--config", ConfigPath]);

        Assert.Equal(2, exit);
        Assert.Equal(message, stderr.Trim());
    }

    [Theory]
    [InlineData("acme:prod", "", "")]
    [InlineData("acme\u202Eorp", "", "")]
    [InlineData("=cmd", "", "")]
    [InlineData("long", "", "")]
    [InlineData("acme", "--expires", "2020-01-01")]
    [InlineData("acme", "--models", ",")]
    public async Task KeysCreate_BadTenantExpiredOrNoModels_OneLineExit2AndNoKey(string tenant, string option, string value)
    {
        string[] args = ["keys", "create", "--tenant", tenant == "long" ? new string('a', 100_000) : tenant, "--config", ConfigPath];
        if (option.Length > 0)
        {
            args = [.. args, option, value];
        }

        var (exit, stdout, stderr) = await MarginalProcess.RunAsync(WorkDir, args);

        Assert.Equal(2, exit);
        Assert.Empty(stdout.Trim());
        var line = Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith($"marginal keys create: {(option.Length > 0 ? option : "--tenant")}: ", line, StringComparison.Ordinal);
        Assert.True(line.Length < 300, line);
    }

    [Fact]
    public async Task Report_EmptyLedgerAsCsv_PrintsHeaderAndTotal()
    {
        var (exit, csv, _) = await MarginalProcess.RunAsync(WorkDir, "report", "--format", "csv", "--config", ConfigPath);

        Assert.Equal(0, exit);
        var lines = csv.Trim().Split('\n');
        Assert.StartsWith("model,requests,errors,input_tokens", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("(total),0,0,0", lines[1], StringComparison.Ordinal);
    }
}
