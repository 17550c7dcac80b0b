using Marginal.Gateway.Configuration;

namespace Marginal.Gateway.Tests.Configuration;

public sealed class ConfigLoaderTests
{
    private const string Valid = """
        providers:
          openai:
            kind: openai
            api_key_env: OPENAI_API_KEY
            timeout: 30s
        models:
          gpt-4o-mini:
            provider: openai
            fallbacks: [gpt-4o]
          gpt-4o:
            provider: openai
        """;

    [Fact]
    public void Parse_ValidFile_BindsSnakeCaseKeys()
    {
        var config = ConfigLoader.Parse(Valid, "marginal.yaml");

        Assert.Equal("OPENAI_API_KEY", config.Providers["openai"].ApiKeyEnv);
        Assert.Equal(["gpt-4o"], config.Models["gpt-4o-mini"].Fallbacks);
        Assert.Equal("http://127.0.0.1:8080", config.Server.Urls);
    }

    [Fact]
    public void Parse_EmptyFile_GivesDefaults()
    {
        var config = ConfigLoader.Parse("", "marginal.yaml");

        Assert.Empty(config.Models);
        Assert.Equal(8 * 1024 * 1024, config.Server.MaxRequestBodyBytes);
    }

    [Theory]
    [InlineData("providers:\n  p:\n    kind: openai\n    base_ur: http://x\n", "marginal.yaml:4:5: unknown key 'base_ur' in a provider (allowed: kind, base_url, api_key_env, api_key_file, api_key_header, timeout, headers, path, threads, max_batch, queue_limit, context, backend, json_string_limit, max_queue_wait, pool)")]
    [InlineData("providers:\n  p:\n    kind: cohere\n", "marginal.yaml: providers.p.kind: 'cohere' is not allowed (allowed: openai, anthropic, local)")]
    [InlineData("providers:\n  p:\n    kind: local\n", "marginal.yaml: providers.p.path: is required for a local provider (a GGUF model file)")]
    [InlineData("providers:\n  p:\n    kind: local\n    path: m.gguf\n    max_batch: 0\n", "marginal.yaml: providers.p.max_batch: must be at least 1, got 0")]
    [InlineData("providers:\n  p:\n    kind: local\n    path: m.gguf\n    json_string_limit: -1\n", "marginal.yaml: providers.p.json_string_limit: must be at least 0, got -1")]
    [InlineData("providers:\n  p:\n    kind: local\n    path: m.gguf\n    backend: tpu\n", "marginal.yaml: providers.p.backend: 'tpu' is not allowed (allowed: cpu, cuda)")]
    [InlineData("providers:\n  p:\n    kind: local\n    path: m.gguf\nmodels:\n  e:\n    provider: p\n    type: embedding\n", "marginal.yaml: models.e.type: embedding models need an openai-kind provider; 'p' is local")]
    [InlineData("providers:\n  p:\n    kind: local\n    path: m.gguf\n    pool:\n      pue: 0.5\n", "marginal.yaml: providers.p.pool.pue: must be at least 1 (facility power ÷ IT power), got 0.5")]
    [InlineData("providers:\n  p:\n    kind: local\n    path: m.gguf\n    pool:\n      purchase_usd: 1000\n", "marginal.yaml: providers.p.pool.lifetime_months: is required with purchase_usd (months to write it off over)")]
    [InlineData("providers:\n  p:\n    kind: local\n    path: m.gguf\n    max_queue_wait: soon\n", "marginal.yaml: providers.p.max_queue_wait: 'soon' is not a duration (e.g. 500ms, 2s)")]
    [InlineData("providers:\n  p:\n    kind: openai\n    base_url: ftp://x\n", "marginal.yaml: providers.p.base_url: 'ftp://x' is not an http(s) URL")]
    [InlineData("providers:\n  p:\n    kind: openai\n    timeout: soon\n", "marginal.yaml: providers.p.timeout: 'soon' is not a duration (allowed: a number of seconds, or e.g. 500ms, 30s, 2m)")]
    [InlineData("providers:\n  p:\n    kind: openai\n    api_key_env: A\n    api_key_file: /k\n", "marginal.yaml: providers.p: set api_key_env or api_key_file, not both")]
    [InlineData("models:\n  m:\n    provider: ghost\n", "marginal.yaml: models.m.provider: 'ghost' is not defined under providers (defined: none)")]
    [InlineData("providers:\n  p:\n    kind: openai\nmodels:\n  m:\n    provider: p\n    fallbacks: [m]\n", "marginal.yaml: models.m.fallbacks: 'm' is not another model defined under models (defined: m)")]
    [InlineData("providers:\n  p:\n    kind: openai\nmodels:\n  m:\n    provider: p\n    type: image\n", "marginal.yaml: models.m.type: 'image' is not allowed (allowed: chat, embedding)")]
    [InlineData("storage:\n  acknowledge: eventually\n", "marginal.yaml: storage.acknowledge: 'eventually' is not allowed (allowed: committed, queued)")]
    [InlineData("storage:\n  acknowledge: queued\n  max_unrecorded: 0\n", "marginal.yaml: storage.max_unrecorded: must be between 1 and 1000000, got 0")]
    [InlineData("storage:\n  kind: mysql\n", "marginal.yaml: storage.kind: 'mysql' is not allowed (allowed: sqlite, postgres)")]
    [InlineData("storage:\n  kind: postgres\n", "marginal.yaml: storage: with kind postgres set connection_string_env (an environment variable) or connection_string_file, exactly one")]
    [InlineData("storage:\n  kind: postgres\n  connection_string_env: PG\n  connection_string_file: /pg\n", "marginal.yaml: storage: with kind postgres set connection_string_env")]
    [InlineData("redis:\n  key_prefix: m\n", "marginal.yaml: redis: set connection_string_env (an environment variable) or connection_string_file, exactly one; the connection string is never written inline")]
    [InlineData("redis:\n  connection_string: 127.0.0.1:6379\n", "marginal.yaml:2:3: unknown key 'connection_string' in 'redis' (allowed: connection_string_env, connection_string_file")]
    [InlineData("redis:\n  connection_string_env: R\n  budgets_fail: maybe\n", "marginal.yaml: redis.budgets_fail: 'maybe' is not allowed (allowed: closed, open)")]
    [InlineData("redis:\n  connection_string_env: R\n  key_prefix: a b\n", "marginal.yaml: redis.key_prefix: 'a b' is not allowed")]
    [InlineData("redis:\n  connection_string_env: R\n  route_feedback_window: 10s\n", "marginal.yaml: redis.route_feedback_window: '10s' is not allowed (a duration from 1m to 7d, e.g. 1h, or off)")]
    [InlineData("redis:\n  connection_string_env: R\n  route_feedback_window: forever\n", "marginal.yaml: redis.route_feedback_window: 'forever' is not allowed")]
    [InlineData("providers:\n  a:\n    kind: anthropic\nmodels:\n  m:\n    provider: a\n    type: embedding\n", "marginal.yaml: models.m.type: embedding models need an openai-kind provider; 'a' is anthropic")]
    [InlineData("server:\n  max_request_body_bytes: lots\n", "marginal.yaml:2:27: invalid value: ")]
    [InlineData("server:\n  urls: not a url\n", "marginal.yaml: server.urls: 'not a url' is not a URL (e.g. http://127.0.0.1:8080)")]
    [InlineData("models: [1, 2\n", "marginal.yaml:1:9: invalid value: ")]
    [InlineData("idempotency:\n  ttl: forever\n", "marginal.yaml: idempotency.ttl: 'forever' is not a duration (allowed: e.g. 90s, 10m, 24h, 7d)")]
    [InlineData("idempotency:\n  max_entries: 0\n", "marginal.yaml: idempotency.max_entries: must be at least 1, got 0")]
    [InlineData("idempotency:\n  replay_for: 1h\n", "marginal.yaml:2:3: unknown key 'replay_for' in 'idempotency' (allowed: replay, ttl, in_flight_ttl, max_entries, max_bytes)")]
    public void Parse_BadFile_OneLineNamingKeyAndAllowed(string yaml, string expectedStart)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "marginal.yaml"));

        Assert.StartsWith(expectedStart, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Parse_RedisSection_DefaultsFailClosed()
    {
        var config = ConfigLoader.Parse("redis:\n  connection_string_env: MARGINAL_REDIS\n", "marginal.yaml");

        Assert.Equal(("MARGINAL_REDIS", "closed", false, "marginal"), (config.Redis!.ConnectionStringEnv, config.Redis.BudgetsFail, config.Redis.FailOpen, config.Redis.KeyPrefix));
        Assert.Null(ConfigLoader.Parse("server:\n  auth: none\n", "marginal.yaml").Redis);
    }

    [Fact]
    public void Parse_RedisRouteFeedbackWindow_DefaultsToOneHourAndTakesOff()
    {
        var defaults = ConfigLoader.Parse("redis:\n  connection_string_env: R\n", "marginal.yaml").Redis!;
        var off = ConfigLoader.Parse("redis:\n  connection_string_env: R\n  route_feedback_window: off\n", "marginal.yaml").Redis!;
        var day = ConfigLoader.Parse("redis:\n  connection_string_env: R\n  route_feedback_window: 1d\n", "marginal.yaml").Redis!;

        Assert.Equal((TimeSpan.FromHours(1), null, TimeSpan.FromDays(1)), (defaults.FeedbackWindow, off.FeedbackWindow, day.FeedbackWindow));
    }

    [Fact]
    public void Load_MissingFile_NamesFile()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Load("/nonexistent/marginal.yaml"));

        Assert.StartsWith("/nonexistent/marginal.yaml: cannot read the file", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("500ms", 0.5)]
    [InlineData("30s", 30)]
    [InlineData("2m", 120)]
    [InlineData("15", 15)]
    public void TryParseDuration_Valid(string text, double seconds)
    {
        Assert.True(ConfigLoader.TryParseDuration(text, out var duration));
        Assert.Equal(TimeSpan.FromSeconds(seconds), duration);
    }

    [Theory]
    [InlineData("0s")]
    [InlineData("-1")]
    [InlineData("2h")]
    [InlineData("forever")]
    public void TryParseDuration_Invalid(string text) => Assert.False(ConfigLoader.TryParseDuration(text, out _));

    [Fact]
    public void SampleConfig_IsValid()
    {
        var sample = Path.Combine(RepoRoot(), "samples", "marginal.yaml");

        var config = ConfigLoader.Load(sample);

        Assert.NotEmpty(config.Models);
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Marginal.slnx")))
        {
            dir = dir.Parent;
        }
        return dir!.FullName;
    }
}
