using System.CommandLine;
using System.Globalization;
using Marginal.Core.Ledger;
using Marginal.Economics.Invoices;
using Marginal.Economics.Reports.Formats;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Configuration;

namespace Marginal.Cli.Commands;

/// <summary>
/// <c>marginal invoice --tenant T --month YYYY-MM [--format md|json|csv] [--close]</c>: a month's bill from the ledger and
/// the plans file. The same ledger and plans give byte-identical output. <c>--close</c> books the difference between the
/// invoice and the per-request revenue in the ledger as one <c>adjustment</c> record (once per tenant and month).
/// </summary>
internal static class InvoiceCommand
{
    public static Command Create()
    {
        var config = ConfigFile.Option();
        var tenant = new Option<string>("--tenant") { Description = "The tenant to bill.", Required = true };
        var month = new Option<string>("--month") { Description = "The month, YYYY-MM (UTC).", Required = true };
        var format = new Option<string>("--format") { Description = "md, json or csv.", DefaultValueFactory = _ => "md" };
        var close = new Option<bool>("--close") { Description = "Book the invoice's difference to the ledger's per-request revenue as an adjustment record." };
        var command = new Command("invoice", "A tenant's invoice for a month, from the ledger.") { config, tenant, month, format, close };
        command.SetAction((parse, cancellationToken) => BillingCommands.RunAsync(parse.GetValue(config), async (loaded, store) =>
        {
            var output = parse.GetValue(format)!;
            if (!InvoiceFormats.Names.Contains(output))
            {
                throw new ConfigException($"marginal invoice: --format: '{output}' is not allowed (allowed: {string.Join(", ", InvoiceFormats.Names)})");
            }
            var monthText = parse.GetValue(month)!;
            if (!DateOnly.TryParseExact(monthText + "-01", "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var first))
            {
                throw new ConfigException($"marginal invoice: --month: '{monthText}' is not a month (allowed: YYYY-MM, e.g. 2026-11)");
            }
            var name = parse.GetValue(tenant)!;
            var billing = PlansLoader.Load(loaded);
            var plan = billing.PlanOf(name);
            var grants = (await store.ReadCreditsAsync(cancellationToken)).Where(g => g.Tenant == name).ToList();
            var start = new DateTimeOffset(first.Year, first.Month, 1, 0, 0, 0, TimeSpan.Zero);
            var since = grants.Count > 0 && grants.Min(g => g.Granted) < start ? grants.Min(g => g.Granted) : start;
            var records = new List<UsageRecord>();
            await foreach (var record in store.ReadAsync(since, start.AddMonths(1), cancellationToken))
            {
                if (record.Tenant == name)
                {
                    records.Add(record);
                }
            }
            if (records.Count == 0 && grants.Count == 0 && !billing.Names(name) && !await IsKnownAsync(store, name, cancellationToken))
            {
                // A mistyped name would otherwise print a valid-looking $0 invoice.
                throw new ConfigException($"marginal invoice: --tenant: '{name}' is not a known tenant (no key, no entry in the plans file, no credit and no ledger record)");
            }
            var invoice = InvoiceBuilder.Build(plan, name, first, records, grants);
            Console.Out.Write(InvoiceFormats.Write(invoice, output));
            if (parse.GetValue(close))
            {
                var booked = records.Where(r => r.Time >= start && !(r.Adjusts ?? "").StartsWith(InvoiceBuilder.MonthClosePrefix, StringComparison.Ordinal)).Sum(r => r.RevenueUsd ?? 0);
                var id = InvoiceBuilder.MonthCloseId(name, invoice.Month);
                var difference = invoice.TotalUsd - booked;
                // Dated at the month's last instant so it falls in the month it closes.
                var adjustment = new UsageRecord(id, start.AddMonths(1).AddTicks(-10), name, "none", "", null, null, null, "ok", false, 0, 0, 0, 0, 0, "none", 0, null,
                    null, null, difference, null, null, "", null, 0, Kind: UsageRecordKinds.Adjustment, Adjusts: id, Tags: "reason:month close");
                var added = (await store.AppendAsync([adjustment], cancellationToken))[0];
                await Console.Error.WriteLineAsync(added
                    ? string.Create(CultureInfo.InvariantCulture, $"booked {id}: {difference:0.######} USD (invoice {invoice.TotalUsd:0.######} − ledger {booked:0.######})")
                    : $"{id} was already booked; nothing changed");
            }
        }));
        return command;
    }

    /// <summary>A tenant some key was made for, or one with a record in the ledger at any time.</summary>
    private static async Task<bool> IsKnownAsync(Marginal.Storage.IMarginalStore store, string tenant, CancellationToken cancellationToken)
    {
        if ((await store.ListKeysAsync(cancellationToken)).Any(k => k.Tenant == tenant))
        {
            return true;
        }
        await foreach (var record in store.ReadAsync(null, null, cancellationToken))
        {
            if (record.Tenant == tenant)
            {
                return true;
            }
        }
        return false;
    }
}
