using Marginal.Gateway.Configuration;
using Marginal.Storage;
using Marginal.Storage.Opening;

namespace Marginal.Cli.Commands;

/// <summary>What the billing commands share: open the ledger the config names, and turn bad input into exit code 2.</summary>
internal static class BillingCommands
{
    public static async Task<int> RunAsync(FileInfo? configOption, Func<MarginalConfig, IMarginalStore, Task> action)
    {
        try
        {
            var (config, _) = ConfigFile.Load(configOption);
            await using var store = await MarginalStores.OpenAsync(config.Storage);
            await action(config, store);
            return 0;
        }
        catch (Exception error) when (error is ConfigException or StoreOpenException)
        {
            await Console.Error.WriteLineAsync(error.Message);
            return MarginalCommand.BadInput;
        }
    }

    /// <summary>A money amount given on the command line; anything else is a <see cref="ConfigException"/> naming command and option.</summary>
    public static decimal Usd(string command, string option, string text, bool positive) =>
        decimal.TryParse(text, System.Globalization.NumberStyles.Number, System.Globalization.CultureInfo.InvariantCulture, out var usd) && (!positive || usd > 0)
            ? usd
            : throw new ConfigException($"marginal {command}: {option}: '{text}' is not {(positive ? "a positive" : "an")} amount in USD (e.g. 25 or 12.50{(positive ? "" : " or -3.20")})");
}
