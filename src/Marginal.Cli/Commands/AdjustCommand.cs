using System.CommandLine;
using System.Globalization;
using Marginal.Core.Ledger;
using Marginal.Gateway.Configuration;

namespace Marginal.Cli.Commands;

/// <summary>
/// <c>marginal adjust --request ID --usd X --reason TEXT [--cost-usd Y]</c>: corrects a request's revenue (and cost) with a
/// new <c>adjustment</c> record; the request's own record is never edited. The adjustment is dated now, so it is billed
/// in the month it is made.
/// </summary>
internal static class AdjustCommand
{
    public static Command Create()
    {
        var config = ConfigFile.Option();
        var request = new Option<string>("--request") { Description = "The request id (x-marginal-request-id).", Required = true };
        var usd = new Option<string>("--usd") { Description = "Revenue to add, USD; negative for a credit note.", Required = true };
        var cost = new Option<string?>("--cost-usd") { Description = "Cost to add, USD (optional)." };
        var reason = new Option<string>("--reason") { Description = "Why; shown on the invoice.", Required = true };
        var command = new Command("adjust", "Correct a request's revenue with an adjustment record.") { config, request, usd, cost, reason };
        command.SetAction((parse, cancellationToken) => BillingCommands.RunAsync(parse.GetValue(config), async (_, store) =>
        {
            var id = parse.GetValue(request)!;
            var revenue = BillingCommands.Usd("adjust", "--usd", parse.GetValue(usd)!, positive: false);
            decimal? costUsd = parse.GetValue(cost) is { } c ? BillingCommands.Usd("adjust", "--cost-usd", c, positive: false) : null;
            var why = parse.GetValue(reason)!.Replace(',', ';').Trim();
            if (why.Length == 0)
            {
                throw new ConfigException("marginal adjust: --reason: must say why (it is shown on the invoice)");
            }
            var target = await store.FindAsync(id, cancellationToken)
                ?? throw new ConfigException($"marginal adjust: --request: no record '{id}' in {store.Path}");
            var record = new UsageRecord($"adj_{Guid.CreateVersion7():N}", TimeProvider.System.GetUtcNow(), target.Tenant, target.KeyId, target.RequestedModel,
                target.ServedModel, target.Provider, target.CapacitySource, "ok", false, 0, 0, 0, 0, 0, "none", 0, null, costUsd, costUsd, revenue, null, null, "",
                null, 0, Kind: UsageRecordKinds.Adjustment, Adjusts: id, Tags: $"reason:{why}");
            await store.AppendAsync([record], cancellationToken);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{record.Id}: {revenue} USD on {id} ({target.Tenant}): {why}"));
        }));
        return command;
    }
}
