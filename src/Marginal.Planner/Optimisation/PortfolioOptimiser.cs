using System.Diagnostics;
using Google.OrTools.LinearSolver;
using Marginal.Planner.Scenarios;

namespace Marginal.Planner.Optimisation;

/// <summary>
/// Chooses purchases, contract levels, deals and the dispatch of every period that minimise the net present cost of
/// serving all demand (docs/planner.md, "Optimiser"), in three solves over one model:
/// <list type="number">
/// <item>the LP relaxation (GLOP): node purchases, contract levels and deals continuous; its cost is the LP bound;</item>
/// <item>the mixed-integer programme (SCIP through OR-Tools): whole nodes ordered per month, contract levels in whole
/// nodes, deals taken or not, with a continuous dispatch; SCIP proves its answer within <see cref="RelativeGap"/> of its
/// own bound, or reports how far it got within <see cref="MipTimeLimit"/>;</item>
/// <item>the LP again with the integer decisions fixed (GLOP): the dispatch, the cost and the duals (a MIP has none).</item>
/// </list>
/// Every plan carries the LP bound and its gap to it, so how far it may be from the best possible plan is printed.
/// OR-Tools works in double: prices enter the model as double and costs leave it as decimal (USD), converted here only.
/// </summary>
public static class PortfolioOptimiser
{
    /// <summary>Above this many periods the decisions are taken on a duration-curve model first (see <see cref="Optimise"/>).</summary>
    public const int DirectPeriods = 2000;

    /// <summary>Blocks of the load-duration curve per month in the decision model of a long (hourly) plan.</summary>
    public const int BlocksPerMonth = 24;

    /// <summary>
    /// SCIP stops once its answer is proven within this share of its bound. 1e-6: a millionth of the plan's cost, far
    /// below any figure a plan prints, so the plan is never measurably worse than an alternative it was offered; OR-Tools'
    /// default (1e-4) would allow $100 on a $1M plan.
    /// </summary>
    public const double RelativeGap = 1e-6;

    /// <summary>
    /// Most time SCIP may search for a plan. Past it the best plan found is kept and its gap to the bound is printed as it
    /// stands: a plan with a stated gap beats no plan. 60 s is four times what the slowest sample scenario needs
    /// (own-base-burst-cloud: about 15 s on two cores, docs/benchmarks.md, "Planner").
    /// </summary>
    public static readonly TimeSpan MipTimeLimit = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The same limit for the re-solves of the tornado and the finite differences (12 of them per plan): 10 s each, so a
    /// plan with sensitivity finishes within a few minutes; SCIP usually has its best plan early and spends the rest
    /// proving it (own-base-burst-cloud: the optimum found at 6 s, proven at 15 s).
    /// </summary>
    public static readonly TimeSpan SensitivityMipTimeLimit = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Optimises <paramref name="inputs"/>. Up to <see cref="DirectPeriods"/> periods (a representative day per month)
    /// the three solves of the class run on the plan itself. Above it (an hourly plan) the relaxation and the MIP run on
    /// each month's load-duration curve cut into <see cref="BlocksPerMonth"/> blocks (its peak hour a block of its own),
    /// the standard time-slice method of capacity planning: integers only on the capacity decisions, which are few, and
    /// continuous dispatch; then every hour is dispatched exactly on the portfolio so chosen. The duration-curve model sums
    /// hours into blocks and lets batch work move within the month, so it is a relaxation of the hourly model and its bounds
    /// are bounds on the hourly plan too. If the hourly dispatch cannot be served on that portfolio, the hourly MIP is solved.
    /// </summary>
    public static Portfolio Optimise(PlanInputs inputs, TimeSpan? mipTimeLimit = null)
    {
        var watch = Stopwatch.StartNew();
        var limit = mipTimeLimit ?? MipTimeLimit;
        if (inputs.Periods.Count > DirectPeriods && Solve(inputs, inputs.DurationCurve(BlocksPerMonth), limit, watch) is { } hourly)
        {
            return hourly;
        }
        return Solve(inputs, inputs, limit, watch) ?? throw Infeasible(inputs);
    }

    /// <summary>
    /// Takes the decisions on <paramref name="decisionInputs"/> (relaxation, then MIP) and dispatches <paramref name="inputs"/>
    /// on them; null when the dispatch cannot be served on those decisions.
    /// </summary>
    private static Portfolio? Solve(PlanInputs inputs, PlanInputs decisionInputs, TimeSpan mipTimeLimit, Stopwatch watch)
    {
        using var lpSolver = CreateSolver("GLOP");
        var relaxation = new Model(decisionInputs, lpSolver, integer: false);
        relaxation.Build();
        if (lpSolver.Solve() != Solver.ResultStatus.OPTIMAL)
        {
            throw Infeasible(inputs);
        }
        var lpBound = lpSolver.Objective().Value();
        var budgetDual = relaxation.BudgetRow?.DualValue() ?? 0;

        using var mipSolver = CreateSolver("SCIP");
        var mip = new Model(decisionInputs, mipSolver, integer: true);
        mip.Build();
        mipSolver.SetTimeLimit((long)mipTimeLimit.TotalMilliseconds);
        // No cutting-plane rounds at the root: with a few integers over a large continuous dispatch, SCIP's root cuts
        // took 0.1 s a round and up to 9 s on 800-variable scenarios while closing little of the gap; branching closes it
        // (200 seeded test scenarios: 71 s with cuts, 14 s without; own-base-burst-cloud about 15 s either way).
        mipSolver.SetSolverSpecificParametersAsString("separating/maxroundsroot = 0");
        using var parameters = new MPSolverParameters();
        parameters.SetDoubleParam(MPSolverParameters.DoubleParam.RELATIVE_MIP_GAP, RelativeGap);
        var status = mipSolver.Solve(parameters);
        if (status is not (Solver.ResultStatus.OPTIMAL or Solver.ResultStatus.FEASIBLE))
        {
            // The relaxation could be served but no whole number of nodes can (a budget or cap below one node).
            throw Infeasible(inputs);
        }
        var decisions = mip.Decisions();
        // A bound on the integer optimum: SCIP's, never below the LP's (both are valid, the larger is tighter).
        var bestBound = Math.Max(lpBound, mipSolver.Objective().BestBound());

        using var dispatchSolver = CreateSolver("GLOP");
        var dispatch = new Model(inputs, dispatchSolver, integer: false);
        dispatch.Build();
        dispatch.Fix(decisions);
        if (dispatchSolver.Solve() != Solver.ResultStatus.OPTIMAL)
        {
            return null;
        }
        return dispatch.Extract(lpBound, bestBound, budgetDual, watch.Elapsed);
    }

    private static Solver CreateSolver(string id) => Solver.CreateSolver(id) ?? throw new InvalidOperationException($"OR-Tools {id} is not available");

    private static ScenarioException Infeasible(PlanInputs inputs) => new(
        $"{inputs.Scenario.File}: supply: the options cannot serve the demand in every period (surges included) within max_gpus, supplier_caps and capex_budget (allowed: add an on_demand or api option without max_gpus, or raise those limits)");

    /// <summary>Integer decisions by option index: nodes ordered per month (own), contracted GPUs (reserved), deals taken (0 or 1).</summary>
    private sealed record Decisions(Dictionary<int, double[]> Nodes, Dictionary<int, double> Levels, Dictionary<int, double> Deals);

    /// <summary>
    /// The model's variables and rows, kept so decisions can be read, fixed and duals read. <paramref name="integer"/>:
    /// nodes, contract levels (in whole nodes) and deals are integer variables (for SCIP); else continuous (the relaxation,
    /// or the dispatch once they are fixed).
    /// </summary>
    private sealed class Model(PlanInputs inputs, Solver solver, bool integer)
    {
        private readonly Scenario _scenario = inputs.Scenario;
        private readonly IReadOnlyList<SupplyOption> _options = inputs.Options;
        private readonly int _months = inputs.Months;

        // x[o][c][p]: output tokens (millions) option o serves of class c in period p; null where it cannot.
        private Variable?[][][] _serve = [];
        // Own: nodes ordered per month; reserved: contracted GPUs; deals: taken (0..1).
        private readonly Dictionary<int, Variable[]> _nodes = [];
        private readonly Dictionary<int, Variable> _level = [];
        // Reserved, integer model only: the contracted level in whole nodes (level = gpus_per_node × this).
        private readonly Dictionary<int, Variable> _levelNodes = [];
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
                    if (integer)
                    {
                        // Integer on the nodes owned by each month (cumulative orders), not on each month's order: the
                        // orders follow as differences of integers. Branching on what is owned, which is what capacity and
                        // cost depend on, closes the search far sooner than branching on when each node was ordered, among
                        // which many plans cost nearly the same.
                        Variable? previous = null;
                        foreach (var order in nodes)
                        {
                            var owned = solver.MakeIntVar(0, double.PositiveInfinity, "");
                            var row = solver.MakeConstraint(0, 0, "");
                            row.SetCoefficient(owned, 1);
                            row.SetCoefficient(order, -1);
                            if (previous is not null)
                            {
                                row.SetCoefficient(previous, -1);
                            }
                            previous = owned;
                        }
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
                    if (integer)
                    {
                        // Contracts are for whole nodes, as owned capacity is bought.
                        var whole = _levelNodes[o] = solver.MakeIntVar(0, double.PositiveInfinity, "");
                        var nodesRow = solver.MakeConstraint(0, 0, "");
                        nodesRow.SetCoefficient(level, 1);
                        nodesRow.SetCoefficient(whole, -config.GpusPerNode);
                    }
                    if (config.MinGpus > 0)
                    {
                        // A deal with a minimum size: either not signed, or at least min_gpus.
                        var deal = _deal[o] = DealVariable();
                        var atLeast = solver.MakeConstraint(0, double.PositiveInfinity, "");
                        atLeast.SetCoefficient(level, 1);
                        atLeast.SetCoefficient(deal, -config.MinGpus);
                        var atMost = solver.MakeConstraint(double.NegativeInfinity, 0, "");
                        atMost.SetCoefficient(level, 1);
                        atMost.SetCoefficient(deal, -(config.MaxGpus ?? UsefulGpus(o)));
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
                    var deal = _deal[o] = DealVariable();
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
        /// The integer decisions as solved: nodes ordered per own option and month, contract levels, deals. Rounded to
        /// the whole numbers they stand for: SCIP accepts values within its integrality tolerance (1e-6) of one.
        /// </summary>
        public Decisions Decisions()
        {
            var deals = _deal.ToDictionary(d => d.Key, d => Math.Round(d.Value.SolutionValue()));
            var levels = _level.ToDictionary(l => l.Key, l => _levelNodes.TryGetValue(l.Key, out var whole)
                ? Math.Round(whole.SolutionValue()) * _options[l.Key].Config.GpusPerNode
                : l.Value.SolutionValue());
            foreach (var (o, taken) in deals)
            {
                if (taken == 0 && levels.ContainsKey(o))
                {
                    levels[o] = 0; // a deal not signed contracts nothing
                }
            }
            return new(_nodes.ToDictionary(n => n.Key, n => n.Value.Select(v => Math.Round(v.SolutionValue())).ToArray()), levels, deals);
        }

        private Variable DealVariable() => integer ? solver.MakeBoolVar("") : solver.MakeNumVar(0, 1, "");

        /// <summary>
        /// The most GPUs of option o any period could keep busy: every class it can serve at that period's demand, a batch
        /// class with its whole day group in that one period; in whole nodes, and at least the deal's minimum. A tighter
        /// bound than an arbitrary large number for "no GPUs unless the deal is signed": more contracted GPUs than this
        /// never lower the cost, so no optimal plan is cut off, and the relaxation's bound is the tighter for it.
        /// </summary>
        private double UsefulGpus(int o)
        {
            var periods = inputs.Periods;
            var groupDemand = new Dictionary<(int Class, int Group), double>();
            for (var c = 0; c < inputs.Classes.Count; c++)
            {
                for (var p = 0; p < periods.Count; p++)
                {
                    if (inputs.Classes[c].Batch)
                    {
                        groupDemand[(c, periods[p].Group)] = groupDemand.GetValueOrDefault((c, periods[p].Group)) + inputs.Demand[c][p];
                    }
                }
            }
            double most = 0;
            for (var p = 0; p < periods.Count; p++)
            {
                double gpus = 0;
                for (var c = 0; c < inputs.Classes.Count; c++)
                {
                    var tp = inputs.Throughput[o][c];
                    if (tp > 0)
                    {
                        var tokens = inputs.Classes[c].Batch ? groupDemand[(c, periods[p].Group)] : inputs.Demand[c][p];
                        gpus += tokens * 1e6 / tp / periods[p].Hours;
                    }
                }
                most = Math.Max(most, gpus);
            }
            var config = _options[o].Config;
            return Math.Ceiling(Math.Max(config.MinGpus, most) / config.GpusPerNode) * config.GpusPerNode;
        }

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

        public Portfolio Extract(double lpBound, double bestBound, double budgetDual, TimeSpan elapsed)
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
            return new Portfolio(plans, (decimal)solver.Objective().Value(), (decimal)lpBound, (decimal)bestBound, shadow, peak, elapsed, solver.NumVariables(), solver.NumConstraints());
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
