namespace Marginal.Gateway.Configuration;

/// <summary>The <c>billing:</c> section (plans are checked when <c>PlansLoader</c> reads their file).</summary>
internal sealed class BillingConfigValidator : IConfigValidator
{
    public void Validate(MarginalConfig config, string file)
    {
        if (config.Billing.DefaultMaxOutputTokens < 1)
        {
            throw new ConfigException($"{file}: billing.default_max_output_tokens: must be at least 1, got {config.Billing.DefaultMaxOutputTokens}");
        }
    }
}
