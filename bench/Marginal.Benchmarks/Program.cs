using BenchmarkDotNet.Running;
using Marginal.Benchmarks;

// Pick benchmarks with --filter, e.g. --filter '*Parsing*'; --filter '*' runs all of them (a few minutes on 2 cores).
// `dashboard-load` is a bounded measurement outside BenchmarkDotNet (DashboardLoad).
if (args.Length > 0 && args[0] == "dashboard-load")
{
    return await DashboardLoad.RunAsync(args[1..]);
}
// `vector-survey [queries]`: per-lookup p50/p99 and recall@1 of the semantic-cache index candidates (docs/benchmarks.md).
if (args is ["vector-survey", ..])
{
    var queries = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1000;
    SemanticIndexBenchmarks.Survey([10_000, 100_000], args.Length > 2 ? args[2].Split(",") : ["exact-f32", "exact-i8", "hnsw-f32", "hnsw-f32-ef128", "hnsw-i8"], queries);
    return 0;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
