using Marginal.Planner.Optimisation;
using Marginal.Planner.Performance;

namespace Marginal.Planner.Projections;

/// <summary>One month of the plan's accounts. Money is USD; tokens are millions. Formulas: docs/planner.md, "Projections".</summary>
public sealed record MonthProjection(
    DateOnly Month,
    double OutputTokens,
    double InputTokens,
    decimal Revenue,
    decimal InferenceCost,
    decimal FixedCost,
    decimal VariableCost,
    decimal GrossMargin,
    decimal ComputeMargin,
    decimal Opex,
    decimal Ebitda,
    decimal Depreciation,
    decimal Capex,
    decimal Funding,
    decimal Cash,
    decimal Burn,
    double? RunwayMonths,
    double? Utilisation,
    decimal CostPerMillion,
    decimal PeakMarginalCostPerMillion,
    BalanceSheetView BalanceSheet)
{
    public double? GrossMarginShare => Revenue > 0 ? (double)(GrossMargin / Revenue) : null;
}

/// <summary>
/// What the plan owes and owns at a month's end, two ways. The balance sheet shows owned equipment, a consolidated
/// joint venture, the equity-method investment in an off-balance-sheet one, and lease liabilities (dedicated contracts
/// marked <c>lease</c>) and debt. The economic-debt view adds what the balance sheet leaves out: the present value of
/// take-or-pay commitments still to run and guarantees given for joint ventures.
/// </summary>
public sealed record BalanceSheetView(decimal Equipment, decimal JointVentureInvestment, decimal LeaseLiabilities, decimal Debt, decimal OffBalanceCommitments, decimal Guarantees)
{
    public decimal BalanceSheetDebt => LeaseLiabilities + Debt;

    public decimal EconomicDebt => BalanceSheetDebt + OffBalanceCommitments + Guarantees;
}

/// <summary>Break-even utilisation of an owned option against renting the same accelerator: u* = F / (R − v).</summary>
public sealed record BreakEven(string Owned, string Rented, decimal FixedPerHour, decimal VariablePerHour, decimal RentPerHour, double? Utilisation, double? PlannedUtilisation);

/// <summary>The monthly accounts of a plan and its totals.</summary>
public sealed record Projection(IReadOnlyList<MonthProjection> Months, IReadOnlyList<BreakEven> BreakEvens)
{
    public decimal TotalRevenue => Months.Sum(m => m.Revenue);
    public decimal TotalInferenceCost => Months.Sum(m => m.InferenceCost);
    public decimal TotalEbitda => Months.Sum(m => m.Ebitda);
    public decimal TotalCapex => Months.Sum(m => m.Capex);
    public decimal MinimumCash => Months.Min(m => m.Cash);

    /// <summary>Cash that must be raised beyond the funding in the scenario so cash never goes below zero.</summary>
    public decimal CapitalNeeded => Math.Max(0, -MinimumCash);

    public double TotalOutputTokens => Months.Sum(m => m.OutputTokens);

    /// <summary>Accrued inference cost per million output tokens over the horizon.</summary>
    public decimal CostPerMillion => TotalOutputTokens > 0 ? TotalInferenceCost / (decimal)TotalOutputTokens : 0;

    public decimal FixedShare => TotalInferenceCost > 0 ? Months.Sum(m => m.FixedCost) / TotalInferenceCost : 0;

    /// <summary>
    /// Net present value of the business's cash flow before funding, Σ (EBITDA − capex) discounted at the scenario's rate,
    /// plus the book value of what is owned at the horizon, discounted from the horizon.
    /// </summary>
    public decimal NetPresentValue { get; init; }

    public double? Utilisation { get; init; }
}

/// <summary>Turns a solved portfolio into monthly accounts.</summary>
public static class Projector
{
    public static Projection Project(PlanInputs inputs, Portfolio portfolio)
    {
        var scenario = inputs.Scenario;
        var config = scenario.Config;
        var pricing = config.Pricing;
        var finance = config.Finance;
        var priceFactor = 1 + (decimal)pricing.PriceChange;
        var paidShare = pricing.Plans.Where(p => p.InputPerM > 0 || p.OutputPerM > 0).Sum(p => p.Share);
        var months = new List<MonthProjection>();
        var cash = finance.StartingCash;
        decimal debt = 0, npv = 0;
        double usedTotal = 0, availableTotal = 0;
        for (var m = 0; m < scenario.Months; m++)
        {
            var output = inputs.MonthlyOutputMillions[m];
            var input = inputs.MonthlyInputMillions[m];
            // Revenue = Σ plans share × (input × input price + output × output price) × (1 + price change)
            var revenue = pricing.Plans.Sum(p => (decimal)p.Share * ((decimal)input * p.InputPerM + (decimal)output * p.OutputPerM)) * priceFactor;
            decimal fixedCost = 0, variableCost = 0, depreciation = 0, capex = 0;
            double used = 0, available = 0;
            foreach (var plan in portfolio.Options)
            {
                var month = plan.Months[m];
                fixedCost += month.FixedCost + month.Depreciation;
                variableCost += month.VariableCost;
                depreciation += month.Depreciation;
                capex += month.Capex;
                used += month.GpuHoursAvailable > 0 ? month.GpuHoursUsed : 0;
                available += month.GpuHoursAvailable;
            }
            usedTotal += used;
            availableTotal += available;
            var inference = fixedCost + variableCost;
            var opex = finance.OpexPerMonth + finance.RndPerMonth;
            var ebitda = revenue - (inference - depreciation) - opex;
            var funding = finance.Funding.Where(f => f.Month - 1 == m).Sum(f => f.Amount);
            debt += finance.Funding.Where(f => f.Month - 1 == m && f.Kind == "debt").Sum(f => f.Amount);
            cash += ebitda - capex + funding;
            var burn = Math.Max(0, -(ebitda - capex));
            npv += (ebitda - capex) * (decimal)scenario.Discount(m);
            months.Add(new MonthProjection(
                scenario.MonthStart(m), output, input, revenue, inference, fixedCost, variableCost,
                revenue - inference,
                // Compute margin counts only the paid users' share of inference cost; gross margin carries the free tier too.
                revenue - inference * (decimal)paidShare,
                opex, ebitda, depreciation, capex, funding, cash, burn,
                burn > 0 ? Math.Max(0, (double)(cash / burn)) : null,
                available > 0 ? used / available : null,
                output > 0 ? inference / (decimal)output : 0,
                portfolio.PeakMarginalCostPerMillion[m],
                BalanceSheet(inputs, portfolio, m, debt)));
        }
        // What is owned at the horizon is worth its book value then (the optimiser credits the same terminal value).
        var terminal = months[^1].BalanceSheet.Equipment + months[^1].BalanceSheet.JointVentureInvestment;
        npv += terminal * (decimal)scenario.Discount(scenario.Months);
        return new Projection(months, BreakEvens(inputs, portfolio))
        {
            NetPresentValue = npv,
            Utilisation = availableTotal > 0 ? usedTotal / availableTotal : null,
        };
    }

    private static BalanceSheetView BalanceSheet(PlanInputs inputs, Portfolio portfolio, int m, decimal debt)
    {
        var scenario = inputs.Scenario;
        decimal equipment = 0, investment = 0, leases = 0, commitments = 0, guarantees = 0;
        foreach (var plan in portfolio.Options)
        {
            var option = plan.Option;
            var config = option.Config;
            switch (option.Kind)
            {
                case "own":
                    // Net book value: cost less depreciation to date.
                    var cost = plan.Months.Take(m + 1).Sum(x => x.Capex);
                    var depreciated = plan.Months.Take(m + 1).Sum(x => x.Depreciation);
                    equipment += cost - depreciated;
                    break;
                case "joint_venture":
                    var book = plan.Months.Take(m + 1).Sum(x => x.Capex) - plan.Months.Take(m + 1).Sum(x => x.Depreciation);
                    if (config.OffBalanceSheet)
                    {
                        investment += book;
                        guarantees += plan.Months[0].GpusBought > 0 ? config.Guarantee : 0;
                    }
                    else
                    {
                        equipment += book;
                    }
                    break;
                case "reserved":
                    // Remaining payments of the term after this month, discounted to this month.
                    var level = plan.Months.Max(x => x.Gpus);
                    decimal remaining = 0;
                    for (var t = m + 1; t < option.LeadTimeMonths + config.TermMonths; t++)
                    {
                        var hours = t < scenario.Months ? scenario.HoursIn(t) : 365.25 * 24 / 12;
                        remaining += (decimal)(config.TakeOrPay * level * hours * scenario.Discount(t - m)) * option.VariablePerGpuHour;
                    }
                    if (config.Lease)
                    {
                        leases += remaining;
                    }
                    else
                    {
                        commitments += remaining;
                    }
                    break;
            }
        }
        return new BalanceSheetView(equipment, investment, leases, debt, commitments, guarantees);
    }

    private static List<BreakEven> BreakEvens(PlanInputs inputs, Portfolio portfolio)
    {
        var result = new List<BreakEven>();
        foreach (var plan in portfolio.Options.Where(p => p.Option.Kind == "own"))
        {
            var own = plan.Option;
            var rented = inputs.Options
                .Where(o => o.Kind == "on_demand" && o.Config.Accelerator == own.Config.Accelerator)
                .OrderBy(o => o.VariablePerGpuHour)
                .FirstOrDefault();
            if (rented is null)
            {
                continue;
            }
            // F: depreciation per hour of life plus colocation and operations per hour; v: power per hour used.
            var fixedPerHour = own.FixedPerGpuHour;
            result.Add(new BreakEven(own.Name, rented.Name, fixedPerHour, own.VariablePerGpuHour, rented.VariablePerGpuHour,
                PerformanceModel.BreakEvenUtilisation(fixedPerHour, own.VariablePerGpuHour, rented.VariablePerGpuHour), plan.Utilisation));
        }
        return result;
    }
}
