using BenchmarkDotNet.Running;

// Pick benchmarks with --filter, e.g. --filter '*Parsing*'; --filter '*' runs all of them (a few minutes on 2 cores).
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
