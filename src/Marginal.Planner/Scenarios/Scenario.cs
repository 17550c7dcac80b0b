namespace Marginal.Planner.Scenarios;

/// <summary>
/// A validated scenario: the file as written, its accelerators (the shipped catalogue with the file's entries laid over
/// it) and its calendar. Nothing in it is null where the loader required a value.
/// </summary>
public sealed record Scenario(string File, ScenarioConfig Config, IReadOnlyDictionary<string, AcceleratorConfig> Accelerators, DateOnly Start)
{
    public string Name => Config.Name ?? Path.GetFileNameWithoutExtension(File);

    /// <summary>
    /// Throughput measured on owned pools (<c>marginal plan --from-ledger</c>), by (supply option, workload): used in place of
    /// the performance model's estimate (<see cref="LedgerThroughput.ApplyTo"/>). Empty: every figure is the model's.
    /// </summary>
    public IReadOnlyDictionary<(string Option, string Workload), MeasuredThroughput> Measured { get; init; } = new Dictionary<(string, string), MeasuredThroughput>();

    public int Months => Config.HorizonMonths;

    /// <summary>The first day of plan month <paramref name="month"/> (0-based).</summary>
    public DateOnly MonthStart(int month) => Start.AddMonths(month);

    public int DaysIn(int month)
    {
        var start = MonthStart(month);
        return DateTime.DaysInMonth(start.Year, start.Month);
    }

    public double HoursIn(int month) => DaysIn(month) * 24.0;

    /// <summary>Discount factor of plan month <paramref name="month"/>: 1 / (1 + r)^(month / 12), r the annual rate.</summary>
    public double Discount(int month) => 1.0 / Math.Pow(1 + Config.Finance.DiscountRate, month / 12.0);
}
