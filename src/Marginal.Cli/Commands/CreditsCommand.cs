using System.CommandLine;
using System.Globalization;
using Marginal.Core.Billing;
using Marginal.Gateway.Configuration;

namespace Marginal.Cli.Commands;

/// <summary><c>marginal credits add --tenant T --usd X [--expires DATE]</c>: a prepaid top-up; a running server counts it within seconds.</summary>
internal static class CreditsCommand
{
    public static Command Create()
    {
        var config = ConfigFile.Option();
        var tenant = new Option<string>("--tenant") { Description = "The tenant whose credit to top up.", Required = true };
        var usd = new Option<string>("--usd") { Description = "Amount in USD, above 0.", Required = true };
        var expires = new Option<string?>("--expires") { Description = $"When what is left of it lapses: {CliTime.Allowed.Replace("an age", "a duration from now", StringComparison.Ordinal)}. Default: never." };
        var add = new Command("add", "Add prepaid credit.") { config, tenant, usd, expires };
        add.SetAction((parse, cancellationToken) => BillingCommands.RunAsync(parse.GetValue(config), async (_, store) =>
        {
            var now = TimeProvider.System.GetUtcNow();
            var amount = BillingCommands.Usd("credits add", "--usd", parse.GetValue(usd)!, positive: true);
            DateTimeOffset? until = null;
            if (parse.GetValue(expires) is { } text)
            {
                until = CliTime.TryParseAge(text, out var span) ? now + span
                    : CliTime.TryParse(text, now, out var at) && at > now ? at
                    : throw new ConfigException($"marginal credits add: --expires: '{text}' is not a future time (allowed: {CliTime.Allowed})");
            }
            var grant = new CreditGrant($"cr_{Guid.CreateVersion7():N}", parse.GetValue(tenant)!, amount, now, until);
            await store.AddCreditAsync(grant, cancellationToken);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{grant.Id}: {amount} USD for tenant {grant.Tenant}, {(until is { } u ? $"expires {u:u}" : "never expires")}"));
        }));
        return new Command("credits", "Prepaid credit.") { add };
    }
}
