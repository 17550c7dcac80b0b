using System.CommandLine;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pricing;

namespace Marginal.Cli.Commands;

/// <summary>
/// <c>marginal models</c>: each configured model with what prices it (its price-book entry with source and date, its
/// owned pool) or <c>unpriced</c>. Exit 0 either way; an unpriced model is also a warning when <c>serve</c> starts.
/// </summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var config = ConfigFile.Option();
        var command = new Command("models", "List the configured models and the price each is recorded at.") { config };
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var (loaded, _) = ConfigFile.Load(parse.GetValue(config));
                var coverage = PricingCoverage.Of(loaded, PriceBookLoader.LoadWithOverride(loaded.Pricing.Book));
                var width = coverage.Count == 0 ? 5 : coverage.Max(m => m.Model.Length);
                foreach (var model in coverage)
                {
                    await Console.Out.WriteLineAsync($"{model.Model.PadRight(width)}  {model.Provider}/{model.Upstream}  {model.Describe()}");
                }
                var unpriced = coverage.Count(m => m.Unpriced);
                await Console.Out.WriteLineAsync($"{coverage.Count} models, {unpriced} unpriced");
                return 0;
            }
            catch (ConfigException error)
            {
                await Console.Error.WriteLineAsync(error.Message);
                return MarginalCommand.BadInput;
            }
        });
        return command;
    }
}
