using System.Diagnostics;
using Google.OrTools.LinearSolver;
using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Optimisation;

/// <summary>
/// Chooses purchases, contract levels, deals and the dispatch of every period that minimise the net present cost of
/// serving all demand (docs/planner.md, "Optimiser"). One linear programme, solved with OR-Tools' GLOP:
/// <list type="number">
/// <item>the LP relaxation: node purchases, contract levels and deal decisions are continuous; its cost is a lower bound;</item>
/// <item>rounding: deals (joint ventures, contracts with a minimum size) left fractional are tried taken and not taken
/// (up to four of them; more are rounded to the nearest); for each, the relaxation is solved again and cumulative owned
/// nodes and contract levels are rounded up to whole nodes, or down where up breaks the capex budget or a cap;</item>
/// <item>the same LP with those decisions fixed, warm-started: the dispatch, the cost and the duals; the cheapest
/// rounding is kept.</item>
/// </list>
/// Rounding instead of a MIP solver (SCIP, CP-SAT): the integer decisions are few (options × months), each rounded by at
/// most one node, and the gap to the relaxation is reported, so the price of rounding is known; a MIP over an hourly
/// dispatch of a year (≈ 100k continuous variables) would not meet the 5-second target on two cores.
/// OR-Tools works in double: prices enter the model as double and costs leave it as decimal (USD), converted here only.
/// </summary>
public static class PortfolioOptimiser
{
    private const double BigGpus = 1e6;

    /// <summary>Above this many periods the decisions are taken on a duration-curve model first (see <see cref="Optimise"/>).</summary>
    public const int DirectPeriods = 2000;

    /// <summary>Blocks of the load-duration curve per month in the decision model of a long (hourly) plan.</summary>
    public const int BlocksPerMonth = 24;

    /// <summary>
    /// Optimises <paramref name="inputs"/>. Up to <see cref="DirectPeriods"/> periods (a representative day per month)
    /// the whole LP is solved as described on the class. Above it (an hourly plan), solving the full LP for the decisions
    /// takes minutes on two cores, so the decisions are taken on each month's load-duration curve cut into
    /// <see cref="BlocksPerMonth"/> blocks (its peak hour a block of its own), the standard time-slice method of capacity
    /// planning; then every hour is dispatched exactly on the portfolio so chosen, and the cost, the dispatch and the duals
    /// are those of the hourly LP. If the hourly dispatch cannot be served on that portfolio, the full LP is solved.
    /// </summary>
    public static Portfolio Optimise(PlanInputs inputs)
    {
        var watch = Stopwatch.StartNew();
        if (inputs.Periods.Count > DirectPeriods)
        {
            var coarse = inputs.DurationCurve(BlocksPerMonth);
            using var coarseSolver = CreateSolver();
            var decisionModel = new Model(coarse, coarseSolver);
            decisionModel.Build();
            if (coarseSolver.Solve() == Solver.ResultStatus.OPTIMAL)
            {
                var lower = coarseSolver.Objective().Value();
                var budget = decisionModel.BudgetRow?.DualValue() ?? 0;
                if (decisionModel.RoundAndFix() == Solver.ResultStatus.OPTIMAL)
                {
                    var decisions = decisionModel.Decisions();
                    using var hourlySolver = CreateSolver();
                    var hourly = new Model(inputs, hourlySolver);
                    hourly.Build();
                    hourly.Fix(decisions);
                    if (hourlySolver.Solve() == Solver.ResultStatus.OPTIMAL)
                    {
                        return hourly.Extract(lower, budget, watch.Elapsed) with { SolveTime = watch.Elapsed };
                    }
                }
            }
        }
        using var solver = CreateSolver();
        var model = new Model(inputs, solver);
        model.Build();
        if (solver.Solve() != Solver.ResultStatus.OPTIMAL)
        {
            throw Infeasible(inputs);
        }
        var lowerBound = solver.Objective().Value();
        var budgetValue = model.BudgetRow?.DualValue() ?? 0;
        if (model.RoundAndFix() != Solver.ResultStatus.OPTIMAL)
        {
            throw Infeasible(inputs);
        }
        return model.Extract(lowerBound, budgetValue, watch.Elapsed) with { SolveTime = watch.Elapsed };
    }

    private static Solver CreateSolver() => Solver.CreateSolver("GLOP") ?? throw new InvalidOperationException("OR-Tools GLOP is not available");

    private static ScenarioException Infeasible(PlanInputs inputs) => new(
        $"{inputs.Scenario.File}: supply: the options cannot serve the demand in every period (surges included) within max_gpus, supplier_caps and capex_budget (allowed: add an on_demand or api option without max_gpus, or raise those limits)");

    /// <summary>Integer decisions by option index: nodes ordered per month (own), contracted GPUs (reserved), deals taken (0 or 1).</summary>
    private sealed record Decisions(Dictionary<int, double[]> Nodes, Dictionary<int, double> Levels, Dictionary<int, double> Deals);

    /// <summary>The LP's variables and rows, kept so the rounding step can fix decisions and read duals.</summary>
    private sealed class Model(PlanInputs inputs, Solver solver)
    {
        private readonly Scenario _scenario = inputs.Scenario;
        private readonly IReadOnlyList<SupplyOption> _options = inputs.Options;
        private readonly int _months = inputs.Months;

        // x[o][c][p]: output tokens (millions) option o serves of class c in period p; null where it cannot.
        private Variable?[][][] _serve = [];
        // Own: nodes ordered per month; reserved: contracted GPUs; deals: taken (0..1).
        private readonly Dictionary<int, Variable[]> _nodes = [];
        private readonly Dictionary<int, Variable> _level = [];
        private readonly Dictionary<int, Variable> _deal = [];
        private readonly Dictionary<int, Variable[]> _pay = [];
        private readonly Dictionary<int, Constraint[]> _capacityRows = [];
        private Constraint[][] _demandRows = [];

        public Constraint? BudgetRow { get; private set; }

        public void Build()
        {
            var objective = solver.Objective();
            objective.SetMinimization();
            var periods = inputs.Periods;
            _serve = new Variable?[_options.Count][][];
            for (var o = 0; o < _options.Count; o++)
            {
                var option = _options[o];
                _serve[o] = new Variable?[inputs.Classes.Count][];
                for (var c = 0; c < inputs.Classes.Count; c++)
                {
                    var tp = inputs.Throughput[o][c];
                    var api = inputs.ApiPricePerMillion[o][c];
                    if (tp <= 0 && api <= 0)
                    {
                        continue;
                    }
                    var row = _serve[o][c] = new Variable?[periods.Count];
                    for (var p = 0; p < periods.Count; p++)
                    {
                        if (!Active(o, periods[p].Month))
                        {
                            continue;
                        }
                        var x = row[p] = solver.MakeNumVar(0, double.PositiveInfinity, "");
                        var perMillion = option.Kind switch
                        {
                            "api" => (double)api,
                            // GPU-hours per million tokens × the hourly cost of using them
                            "own" or "on_demand" or "spot" => (double)option.VariablePerGpuHour * 1e6 / tp,
                            _ => 0, // reserved: paid through pay[o][m]; joint venture: its costs are fixed
                        };
                        objective.SetCoefficient(x, perMillion * _scenario.Discount(periods[p].Month));
                    }
                }
                AddCapacity(o, objective);
            }
            AddDemand();
            AddSupplierCaps();
            AddBudget();
        }

        private bool Active(int o, int month)
        {
            var option = _options[o];
            return option.Kind switch
            {
                "reserved" => month >= option.LeadTimeMonths && month < option.LeadTimeMonths + option.Config.TermMonths,
                "own" or "joint_venture" => month >= option.LeadTimeMonths,
                _ => true,
            };
        }

        /// <summary>GPU-hours option o uses in period p, as a row expression: Σ_c x[o][c][p] · 10⁶ / throughput.</summary>
        private void AddUse(Constraint row, int o, int p, double sign)
        {
            for (var c = 0; c < inputs.Classes.Count; c++)
            {
                if (_serve[o][c]?[p] is { } x && inputs.Throughput[o][c] > 0)
                {
                    row.SetCoefficient(x, sign * 1e6 / inputs.Throughput[o][c]);
                }
            }
        }

        private void AddCapacity(int o, Objective objective)
        {
            var option = _options[o];
            var periods = inputs.Periods;
            var config = option.Config;
            var horizonDiscount = _scenario.Discount(_months);
            Func<int, (Variable Var, double Gpus)[]> capacity;
            switch (option.Kind)
            {
                case "own":
                {
                    // nodes[m]: nodes ordered in month m, arriving in m + lead. Cost: capex now, colocation and operations
                    // every month from arrival, less the book value left at the horizon (a terminal value).
                    var gpn = config.GpusPerNode;
                    var orders = _months - option.LeadTimeMonths;
                    var nodes = _nodes[o] = new Variable[orders];
                    for (var m = 0; m < orders; m++)
                    {
                        nodes[m] = solver.MakeNumVar(0, double.PositiveInfinity, "");
                        var arrival = m + option.LeadTimeMonths;
                        var cost = (double)option.CapexPerGpu * _scenario.Discount(m);
                        for (var t = arrival; t < _months; t++)
                        {
                            cost += (double)option.FixedPerGpuMonth * _scenario.Discount(t);
                        }
                        cost -= (double)option.CapexPerGpu * option.BookFraction(_months - arrival) * horizonDiscount;
                        objective.SetCoefficient(nodes[m], cost * gpn);
                    }
                    if (config.MaxGpus is { } max)
                    {
                        var cap = solver.MakeConstraint(double.NegativeInfinity, max, "");
                        foreach (var n in nodes)
                        {
                            cap.SetCoefficient(n, gpn);
                        }
                    }
                    capacity = month => nodes.Take(Math.Max(0, month - option.LeadTimeMonths + 1)).Select(n => (n, (double)gpn)).ToArray();
                    break;
                }
                case "reserved":
                {
                    var level = _level[o] = solver.MakeNumVar(0, config.MaxGpus ?? double.PositiveInfinity, "");
                    if (config.MinGpus > 0)
                    {
                        // A deal with a minimum size: either not signed, or at least min_gpus.
                        var deal = _deal[o] = solver.MakeNumVar(0, 1, "");
                        var atLeast = solver.MakeConstraint(0, double.PositiveInfinity, "");
                        atLeast.SetCoefficient(level, 1);
                        atLeast.SetCoefficient(deal, -config.MinGpus);
                        var atMost = solver.MakeConstraint(double.NegativeInfinity, 0, "");
                        atMost.SetCoefficient(level, 1);
                        atMost.SetCoefficient(deal, -(config.MaxGpus ?? BigGpus));
                    }
                    // Take-or-pay: each month pays price × max(used, take_or_pay × level × hours). Months of the term past
                    // the horizon are committed too: their floor is in the objective on the level.
                    var pay = _pay[o] = new Variable[_months];
                    var price = (double)option.VariablePerGpuHour;
                    var beyond = 0.0;
                    for (var m = option.LeadTimeMonths; m < option.LeadTimeMonths + config.TermMonths; m++)
                    {
                        if (m >= _months)
                        {
                            beyond += price * config.TakeOrPay * (365.25 * 24 / 12) * _scenario.Discount(m);
                            continue;
                        }
                        pay[m] = solver.MakeNumVar(0, double.PositiveInfinity, "");
                        objective.SetCoefficient(pay[m], price * _scenario.Discount(m));
                        var floor = solver.MakeConstraint(0, double.PositiveInfinity, "");
                        floor.SetCoefficient(pay[m], 1);
                        floor.SetCoefficient(level, -config.TakeOrPay * _scenario.HoursIn(m));
                        var used = solver.MakeConstraint(0, double.PositiveInfinity, "");
                        used.SetCoefficient(pay[m], 1);
                        for (var p = 0; p < periods.Count; p++)
                        {
                            if (periods[p].Month == m)
                            {
                                AddUse(used, o, p, -1);
                            }
                        }
                    }
                    objective.SetCoefficient(level, beyond);
                    capacity = month => Active(o, month) ? [(level, 1.0)] : [];
                    break;
                }
                case "joint_venture":
                {
                    // Taken or not: the share of the facility's capex is paid at signing (month 0), its opex share every
                    // month from opening, and the share's book value is left at the horizon.
                    var deal = _deal[o] = solver.MakeNumVar(0, 1, "");
                    var share = config.Share;
                    var cost = share * (double)config.FacilityCapex;
                    for (var t = option.LeadTimeMonths; t < _months; t++)
                    {
                        cost += share * (double)config.FacilityOpexPerMonth * _scenario.Discount(t);
                    }
                    cost -= share * (double)config.FacilityCapex * option.BookFraction(_months - option.LeadTimeMonths) * horizonDiscount;
                    objective.SetCoefficient(deal, cost);
                    var gpus = share * config.FacilityGpus;
                    capacity = month => Active(o, month) ? [(deal, gpus)] : [];
                    break;
                }
                case "api":
                    if (config.MaxTokensPerMinute is { } tpm)
                    {
                        for (var p = 0; p < periods.Count; p++)
                        {
                            // The rate limit counts input and output tokens.
                            var row = solver.MakeConstraint(double.NegativeInfinity, tpm * 60 * periods[p].Hours / 1e6, "");
                            for (var c = 0; c < inputs.Classes.Count; c++)
                            {
                                if (_serve[o][c]?[p] is { } x)
                                {
                                    row.SetCoefficient(x, 1 + inputs.Classes[c].InputPerOutput);
                                }
                            }
                        }
                    }
                    return;
                default: // on_demand, spot: no decision; at most max_gpus at a time
                    if (config.MaxGpus is not { } limit)
                    {
                        return;
                    }
                    capacity = _ => [];
                    var rows = _capacityRows[o] = new Constraint[periods.Count];
                    for (var p = 0; p < periods.Count; p++)
                    {
                        rows[p] = solver.MakeConstraint(double.NegativeInfinity, limit * periods[p].Hours, "");
                        AddUse(rows[p], o, p, 1);
                    }
                    return;
            }
            var capRows = _capacityRows[o] = new Constraint[periods.Count];
            for (var p = 0; p < periods.Count; p++)
            {
                // use − hours × available GPUs ≤ 0
                var row = capRows[p] = solver.MakeConstraint(double.NegativeInfinity, 0, "");
                AddUse(row, o, p, 1);
                foreach (var (variable, gpus) in capacity(periods[p].Month))
                {
                    row.SetCoefficient(variable, -gpus * periods[p].Hours);
                }
            }
        }

        private void AddDemand()
        {
            var periods = inputs.Periods;
            _demandRows = new Constraint[inputs.Classes.Count][];
            for (var c = 0; c < inputs.Classes.Count; c++)
            {
                if (!inputs.Classes[c].Batch)
                {
                    _demandRows[c] = new Constraint[periods.Count];
                    for (var p = 0; p < periods.Count; p++)
                    {
                        // Equal, not at least: capacity that costs nothing at the margin must not serve tokens nobody asked for.
                        var row = _demandRows[c][p] = solver.MakeConstraint(inputs.Demand[c][p], inputs.Demand[c][p], "");
                        for (var o = 0; o < _options.Count; o++)
                        {
                            if (_serve[o][c]?[p] is { } x)
                            {
                                row.SetCoefficient(x, 1);
                            }
                        }
                    }
                    continue;
                }
                // Batch work: the day group's total, served in any of its periods.
                var groups = periods[^1].Group + 1;
                var rows = _demandRows[c] = new Constraint[groups];
                for (var g = 0; g < groups; g++)
                {
                    rows[g] = solver.MakeConstraint(0, 0, "");
                }
                for (var p = 0; p < periods.Count; p++)
                {
                    var row = rows[periods[p].Group];
                    row.SetBounds(row.Lb() + inputs.Demand[c][p], row.Lb() + inputs.Demand[c][p]);
                    for (var o = 0; o < _options.Count; o++)
                    {
                        if (_serve[o][c]?[p] is { } x)
                        {
                            row.SetCoefficient(x, 1);
                        }
                    }
                }
            }
        }

        private void AddSupplierCaps()
        {
            foreach (var (supplier, cap) in _scenario.Config.SupplierCaps)
            {
                for (var m = 0; m < _months; m++)
                {
                    // Σ tokens served by the supplier's options ≤ cap × the month's demand
                    var row = solver.MakeConstraint(double.NegativeInfinity, cap * inputs.MonthlyOutputMillions[m], "");
                    for (var o = 0; o < _options.Count; o++)
                    {
                        if (_options[o].Supplier != supplier)
                        {
                            continue;
                        }
                        for (var p = 0; p < inputs.Periods.Count; p++)
                        {
                            if (inputs.Periods[p].Month != m)
                            {
                                continue;
                            }
                            for (var c = 0; c < inputs.Classes.Count; c++)
                            {
                                if (_serve[o][c]?[p] is { } x)
                                {
                                    row.SetCoefficient(x, 1);
                                }
                            }
                        }
                    }
                }
            }
        }

        private void AddBudget()
        {
            if (_scenario.Config.Finance.CapexBudget is not { } budget)
            {
                return;
            }
            BudgetRow = solver.MakeConstraint(double.NegativeInfinity, (double)budget, "");
            foreach (var (o, nodes) in _nodes)
            {
                foreach (var n in nodes)
                {
                    BudgetRow.SetCoefficient(n, (double)_options[o].CapexPerGpu * _options[o].Config.GpusPerNode);
                }
            }
            foreach (var (o, deal) in _deal)
            {
                if (_options[o].Kind == "joint_venture")
                {
                    BudgetRow.SetCoefficient(deal, _options[o].Config.Share * (double)_options[o].Config.FacilityCapex);
                }
            }
        }

        /// <summary>
        /// Rounds the integer decisions, fixes them and re-solves (see the class comment). Deals left fractional by the
        /// relaxation are tried both ways when there are at most four of them (2⁴ combinations), each with the other
        /// decisions re-relaxed and rounded; with more, each is rounded to the nearest. The cheapest feasible one stays.
        /// </summary>
        public Solver.ResultStatus RoundAndFix()
        {
            var relaxed = _deal.ToDictionary(d => d.Key, d => d.Value.SolutionValue());
            var fractional = relaxed.Where(d => d.Value is > 1e-6 and < 1 - 1e-6).Select(d => d.Key).ToList();
            var combinations = new List<Dictionary<int, double>>();
            var rounded = relaxed.ToDictionary(d => d.Key, d => d.Value >= 0.5 ? 1.0 : 0.0);
            if (fractional.Count is > 0 and <= 4)
            {
                for (var mask = 0; mask < 1 << fractional.Count; mask++)
                {
                    var combination = new Dictionary<int, double>(rounded);
                    for (var i = 0; i < fractional.Count; i++)
                    {
                        combination[fractional[i]] = (mask >> i & 1) == 1 ? 1 : 0;
                    }
                    combinations.Add(combination);
                }
            }
            else
            {
                combinations.Add(rounded);
            }
            Dictionary<int, double>? best = null;
            var bestCost = double.PositiveInfinity;
            var bestUp = true;
            foreach (var combination in combinations)
            {
                foreach (var up in new[] { true, false })
                {
                    if (FixAndSolve(combination, up) == Solver.ResultStatus.OPTIMAL)
                    {
                        if (solver.Objective().Value() < bestCost)
                        {
                            (best, bestCost, bestUp) = (combination, solver.Objective().Value(), up);
                        }
                        break; // rounding down only when rounding up breaks the budget or a cap
                    }
                }
            }
            return best is null ? Solver.ResultStatus.INFEASIBLE : FixAndSolve(best, bestUp);
        }

        /// <summary>The integer decisions as solved: nodes ordered per own option and month, contract levels, deals.</summary>
        public Decisions Decisions() => new(
            _nodes.ToDictionary(n => n.Key, n => n.Value.Select(v => v.SolutionValue()).ToArray()),
            _level.ToDictionary(l => l.Key, l => l.Value.SolutionValue()),
            _deal.ToDictionary(d => d.Key, d => d.Value.SolutionValue()));

        /// <summary>Fixes every integer decision to <paramref name="decisions"/> (taken on another model of the same options).</summary>
        public void Fix(Decisions decisions)
        {
            foreach (var (o, vars) in _nodes)
            {
                for (var m = 0; m < vars.Length; m++)
                {
                    vars[m].SetBounds(decisions.Nodes[o][m], decisions.Nodes[o][m]);
                }
            }
            foreach (var (o, level) in _level)
            {
                level.SetBounds(decisions.Levels[o], decisions.Levels[o]);
            }
            foreach (var (o, deal) in _deal)
            {
                deal.SetBounds(decisions.Deals[o], decisions.Deals[o]);
            }
        }

        /// <summary>Fixes the deals, re-solves the relaxation for the rest, rounds nodes and levels and solves again.</summary>
        private Solver.ResultStatus FixAndSolve(Dictionary<int, double> deals, bool roundNodesUp)
        {
            foreach (var (o, deal) in _deal)
            {
                deal.SetBounds(deals[o], deals[o]);
            }
            foreach (var vars in _nodes.Values)
            {
                foreach (var v in vars)
                {
                    v.SetBounds(0, double.PositiveInfinity);
                }
            }
            foreach (var (o, level) in _level)
            {
                level.SetBounds(0, _options[o].Config.MaxGpus ?? double.PositiveInfinity);
            }
            if (solver.Solve() != Solver.ResultStatus.OPTIMAL)
            {
                return Solver.ResultStatus.INFEASIBLE;
            }
            var nodes = _nodes.ToDictionary(n => n.Key, n => n.Value.Select(v => v.SolutionValue()).ToArray());
            var levels = _level.ToDictionary(l => l.Key, l => l.Value.SolutionValue());
            foreach (var (o, vars) in _nodes)
            {
                // Round the cumulative count of nodes, so small orders spread over months do not each become a node.
                double cumulative = 0, rounded = 0;
                for (var m = 0; m < vars.Length; m++)
                {
                    cumulative += nodes[o][m];
                    var target = Math.Max(rounded, roundNodesUp ? Math.Ceiling(cumulative - 1e-6) : Math.Floor(cumulative + 1e-6));
                    vars[m].SetBounds(target - rounded, target - rounded);
                    rounded = target;
                }
            }
            foreach (var (o, level) in _level)
            {
                var config = _options[o].Config;
                var signed = !_deal.TryGetValue(o, out var deal) || deal.Lb() > 0;
                var value = signed ? Math.Max(Math.Ceiling(levels[o] / config.GpusPerNode - 1e-6) * config.GpusPerNode, config.MinGpus) : 0;
                value = Math.Min(value, config.MaxGpus ?? value);
                level.SetBounds(value, value);
            }
            return solver.Solve();
        }

        public Portfolio Extract(double lowerBound, double budgetDual, TimeSpan elapsed)
        {
            var periods = inputs.Periods;
            var plans = new List<OptionPlan>();
            var shadow = new List<ShadowPrice>();
            for (var o = 0; o < _options.Count; o++)
            {
                var option = _options[o];
                var months = new OptionMonth[_months];
                double owned = 0;
                var orders = new double[_months];
                if (_nodes.TryGetValue(o, out var nodeVars))
                {
                    for (var m = 0; m < nodeVars.Length; m++)
                    {
                        orders[m] = Math.Round(nodeVars[m].SolutionValue()) * option.Config.GpusPerNode;
                    }
                }
                for (var m = 0; m < _months; m++)
                {
                    double used = 0, tokens = 0, peakGpus = 0;
                    decimal variable = 0;
                    for (var p = 0; p < periods.Count; p++)
                    {
                        if (periods[p].Month != m)
                        {
                            continue;
                        }
                        double periodUse = 0;
                        for (var c = 0; c < inputs.Classes.Count; c++)
                        {
                            if (_serve[o][c]?[p] is not { } x)
                            {
                                continue;
                            }
                            var value = x.SolutionValue();
                            tokens += value;
                            if (inputs.Throughput[o][c] > 0)
                            {
                                periodUse += value * 1e6 / inputs.Throughput[o][c];
                            }
                            if (option.Kind == "api")
                            {
                                variable += (decimal)value * inputs.ApiPricePerMillion[o][c];
                            }
                        }
                        used += periodUse;
                        peakGpus = Math.Max(peakGpus, periodUse / periods[p].Hours);
                    }
                    months[m] = MonthOf(o, m, used, tokens, peakGpus, variable, orders, ref owned);
                }
                plans.Add(new OptionPlan(option, months));
                AddShadowPrices(o, shadow);
            }
            if (BudgetRow is not null)
            {
                shadow.Add(new ShadowPrice("capex budget", (decimal)-budgetDual, "USD per USD of budget",
                    "net present cost saved by one more dollar of capex budget (LP relaxation; 0 when the budget does not bind)"));
            }
            var peak = new decimal[_months];
            for (var c = 0; c < inputs.Classes.Count; c++)
            {
                for (var r = 0; r < _demandRows[c].Length; r++)
                {
                    var month = inputs.Classes[c].Batch ? periods.First(p => p.Group == r).Month : periods[r].Month;
                    // A demand row's dual is the discounted cost of one more million tokens there; undo the discount.
                    var marginal = (decimal)(_demandRows[c][r].DualValue() / _scenario.Discount(month));
                    peak[month] = Math.Max(peak[month], marginal);
                }
            }
            return new Portfolio(plans, (decimal)solver.Objective().Value(), (decimal)lowerBound, shadow, peak, elapsed, solver.NumVariables(), solver.NumConstraints());
        }

        private OptionMonth MonthOf(int o, int m, double used, double tokens, double peakGpus, decimal variable, double[] orders, ref double owned)
        {
            var option = _options[o];
            var config = option.Config;
            var hours = _scenario.HoursIn(m);
            switch (option.Kind)
            {
                case "own":
                {
                    var arriving = m - option.LeadTimeMonths is var order and >= 0 ? orders[order] : 0;
                    owned += arriving;
                    var depreciation = 0m;
                    for (var order2 = 0; order2 + option.LeadTimeMonths <= m && order2 < orders.Length; order2++)
                    {
                        var age = m - (order2 + option.LeadTimeMonths);
                        if (age < option.LifetimeMonths)
                        {
                            depreciation += (decimal)orders[order2] * option.CapexPerGpu * (decimal)((1 - option.ResidualFraction) / option.LifetimeMonths);
                        }
                    }
                    return new OptionMonth(owned, orders[m], owned * hours, used, tokens, (decimal)orders[m] * option.CapexPerGpu,
                        (decimal)owned * option.FixedPerGpuMonth, (decimal)used * option.VariablePerGpuHour, depreciation);
                }
                case "reserved":
                {
                    var level = _level[o].SolutionValue();
                    if (!Active(o, m))
                    {
                        return new OptionMonth(0, m == 0 ? level : 0, 0, 0, 0, 0, 0, 0, 0);
                    }
                    var floor = config.TakeOrPay * level * hours;
                    var price = option.VariablePerGpuHour;
                    return new OptionMonth(level, m == 0 ? level : 0, level * hours, used, tokens, 0, (decimal)floor * price, (decimal)Math.Max(0, used - floor) * price, 0);
                }
                case "joint_venture":
                {
                    var taken = _deal[o].SolutionValue();
                    var gpus = taken * config.Share * config.FacilityGpus;
                    var capex = m == 0 ? (decimal)(taken * config.Share) * config.FacilityCapex : 0;
                    if (!Active(o, m))
                    {
                        return new OptionMonth(0, m == 0 ? gpus : 0, 0, 0, 0, capex, 0, 0, 0);
                    }
                    var shareCapex = (decimal)(taken * config.Share) * config.FacilityCapex;
                    var age = m - option.LeadTimeMonths;
                    var depreciation = age < option.LifetimeMonths ? shareCapex * (decimal)((1 - option.ResidualFraction) / option.LifetimeMonths) : 0;
                    return new OptionMonth(gpus, m == 0 ? gpus : 0, gpus * hours, used, tokens, capex, (decimal)(taken * config.Share) * config.FacilityOpexPerMonth, 0, depreciation);
                }
                case "api":
                    return new OptionMonth(0, 0, 0, 0, tokens, 0, 0, variable, 0);
                default:
                    return new OptionMonth(peakGpus, 0, 0, used, tokens, 0, 0, (decimal)used * option.VariablePerGpuHour, 0);
            }
        }

        private void AddShadowPrices(int o, List<ShadowPrice> shadow)
        {
            var option = _options[o];
            // A fixed decision's reduced cost is d(objective)/d(decision): its own cost minus what its capacity saves.
            if (_nodes.TryGetValue(o, out var nodes) && nodes.Length > 0)
            {
                var gpn = option.Config.GpusPerNode;
                var reduced = nodes[0].ReducedCost() / gpn;
                var ownCost = solver.Objective().GetCoefficient(nodes[0]) / gpn;
                shadow.Add(new ShadowPrice($"{option.Name}: one more GPU", (decimal)(ownCost - reduced), "USD (NPV) per GPU",
                    $"operating cost one more GPU ordered in month 1 (arriving month {option.LeadTimeMonths + 1}) would save over the horizon; it costs {(decimal)ownCost:N0} net of its residual value"));
            }
            if (_level.TryGetValue(o, out var level))
            {
                // Its cost runs through the take-or-pay rows, so the reduced cost is already net of what it pays.
                shadow.Add(new ShadowPrice($"{option.Name}: one more contracted GPU", (decimal)-level.ReducedCost(), "USD (NPV) per GPU",
                    "net present cost saved by contracting one more GPU for the term, its take-or-pay payments included (negative: it would cost more)"));
            }
        }
    }
}
