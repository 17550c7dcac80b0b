using BenchmarkDotNet.Running;
using Marginal.Benchmarks;

// Pick benchmarks with --filter, e.g. --filter '*Parsing*'; --filter '*' runs all of them (a few minutes on 2 cores).
// `dashboard-load` is a bounded measurement outside BenchmarkDotNet (DashboardLoad).
if (args.Length > 0 && args[0] == "dashboard-load")
{
    return await DashboardLoad.RunAsync(args[1..]);
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
