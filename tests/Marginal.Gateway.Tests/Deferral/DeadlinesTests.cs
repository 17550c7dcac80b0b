using Marginal.Gateway.Configuration;
using Marginal.Gateway.Deferral;

namespace Marginal.Gateway.Tests.Deferral;

public sealed class DeadlinesTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 3, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("30m", 1800)]
    [InlineData("6h", 21600)]
    [InlineData("1d", 86400)]
    [InlineData("PT6H", 21600)]
    [InlineData("2026-11-28T09:00:00Z", 21600)]
    [InlineData("2026-11-28T10:00:00+01:00", 21600)]
    public void TryParse_DurationOrTime_GivesDeadline(string text, int seconds)
    {
        Assert.True(Deadlines.TryParse(text, Now, out var deadline));
        Assert.Equal(Now.AddSeconds(seconds), deadline);
    }

    [Theory]
    [InlineData("")]
    [InlineData("soon")]
    [InlineData("0s")]
    [InlineData("-1h")]
    [InlineData("8d")]
    [InlineData("2026-11-28T02:00:00Z")]
    [InlineData("P")]
    public void TryParse_NotAFutureDeadlineWithinAWeek_ReturnsFalse(string text)
    {
        Assert.False(Deadlines.TryParse(text, Now, out _));
    }

    [Theory]
    [InlineData("deferral:\n  flush_interval: often", "deferral.flush_interval")]
    [InlineData("deferral:\n  default_deadline: never", "deferral.default_deadline")]
    [InlineData("deferral:\n  batch_providers: [nope]", "deferral.batch_providers")]
    [InlineData("deferral:\n  models: [nope]", "deferral.models")]
    [InlineData("deferral:\n  flush_size: 0", "deferral.flush_size")]
    [InlineData("shaping:\n  exclude_models: [nope]", "shaping.exclude_models")]
    public void Parse_BadDeferralOrShapingSection_NamesTheKey(string section, string key)
    {
        var yaml = $"{section}\nproviders:\n  p:\n    kind: openai\nmodels:\n  m:\n    provider: p\n";

        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "marginal.yaml"));

        Assert.Contains($"marginal.yaml: {key}", error.Message, StringComparison.Ordinal);
    }
}
