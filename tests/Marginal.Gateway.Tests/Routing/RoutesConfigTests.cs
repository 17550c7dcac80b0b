using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;

namespace Marginal.Gateway.Tests.Routing;

public sealed class RoutesConfigTests
{
    private const string Models = """
        providers:
          openai:
            kind: openai
        models:
          big:
            provider: openai
          small:
            provider: openai
          embed:
            provider: openai
            type: embedding
        """;

    private static MarginalConfig Parse(string routes) => ConfigLoader.Parse(Models + "\nroutes:\n" + routes, "marginal.yaml");

    [Fact]
    public void Parse_FullRoute_BindsEveryPart()
    {
        var config = Parse("""
              auto:
                strong: big
                weak: small
                policies:
                  - name: code
                    last_user_matches: "(?i)python"
                    max_prompt_tokens: 2000
                    model: weak
                cascade:
                  checks: [json_schema, verifier]
                  verifier: { model: small, min_score: 8 }
                no_downgrade_tenants: [acme]
            """);

        var route = config.Routes["auto"];
        Assert.Equal(("big", "small", "code", 2000L), (route.Strong, route.Weak, route.Policies[0].Name, route.Policies[0].MaxPromptTokens!.Value));
        Assert.Equal(8, route.Cascade!.Verifier!.MinScore);
        Assert.Equal(["acme"], route.NoDowngradeTenants);
    }

    [Theory]
    [InlineData("  auto:\n    weak: small\n", "marginal.yaml: routes.auto.strong: '' is not a chat model defined under models (allowed: big, small)")]
    [InlineData("  auto:\n    strong: embed\n", "marginal.yaml: routes.auto.strong: 'embed' is not a chat model defined under models (allowed: big, small)")]
    [InlineData("  big:\n    strong: big\n", "marginal.yaml: routes.big: a route alias cannot have the name of a configured model")]
    [InlineData("  auto:\n    strong: big\n    cascade: {}\n", "marginal.yaml: routes.auto.weak: '' is not a chat model defined under models (allowed: big, small)")]
    [InlineData("  auto:\n    strong: big\n    default: cheapest\n", "marginal.yaml: routes.auto.default: 'cheapest' is not allowed (allowed: strong, weak)")]
    [InlineData("  auto:\n    strong: big\n    policies:\n      - name: x\n        model: huge\n", "marginal.yaml: routes.auto.policies[0].model: 'huge' is not a chat model defined under models (allowed: strong, weak, big, small)")]
    [InlineData("  auto:\n    strong: big\n    policies:\n      - name: x\n        model: big\n        last_user_matches: \"(\"\n", "marginal.yaml: routes.auto.policies[0].last_user_matches: '(' is not a valid regular expression")]
    [InlineData("  auto:\n    strong: big\n    policies:\n      - name: x\n        model: big\n        min_prompt_chars: 10\n        max_prompt_chars: 5\n", "marginal.yaml: routes.auto.policies[0]: min_prompt_chars and max_prompt_chars must not be negative")]
    [InlineData("  auto:\n    strong: big\n    weak: small\n    cascade:\n      checks: [vibes]\n", "marginal.yaml: routes.auto.cascade.checks: 'vibes' is not allowed (allowed: json_schema, refusal, verifier)")]
    [InlineData("  auto:\n    strong: big\n    weak: small\n    learned: {}\n", "marginal.yaml: routes.auto.learned.model: is required")]
    [InlineData("  auto:\n    strong: big\n    weak: small\n    learned:\n      model: r.json\n      threshold: .inf\n", "marginal.yaml: routes.auto.learned.threshold: must be a finite number")]
    [InlineData("  auto:\n    strong: big\n    colour: red\n", "unknown key 'colour' in a route (allowed: strong, weak, default, policies, learned, cascade, no_downgrade_tenants)")]
    public void Parse_BadRoute_IsOneLineNamingTheField(string routes, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => Parse(routes));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Build_LearnedModelFileMissing_IsConfigErrorNamingTheRoute()
    {
        var config = Parse("  auto:\n    strong: big\n    weak: small\n    learned:\n      model: /nonexistent/router.json\n");

        var error = Assert.Throws<ConfigException>(() => GatewayModel.Build(config, TimeProvider.System));

        Assert.StartsWith("routes.auto.learned.model: /nonexistent/router.json: not a readable router model file", error.Message, StringComparison.Ordinal);
    }
}
