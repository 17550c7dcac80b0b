using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using Cloud.Unum.USearch;
using Marginal.Gateway.Caching;

namespace Marginal.Benchmarks;

/// <summary>
/// Semantic-cache lookup candidates at <see cref="Entries"/> random 384-dimension unit vectors, without embedding:
/// the float32 scan, the gateway's <see cref="VectorIndex"/> (an int8 scan with a float32 rerank), and USearch's HNSW.
/// BenchmarkDotNet gives iteration means; <see cref="Survey"/> gives per-lookup p50/p99 and recall@1 against the
/// exact scan (run with <c>-- vector-survey</c>).
/// </summary>
[Config(typeof(PercentileConfig))]
public class SemanticIndexBenchmarks
{
    public const int Dimensions = 384;

    private INearestIndex _index = null!;
    private float[][] _queries = [];
    private int _next;

    [Params(10_000, 100_000)]
    public int Entries { get; set; }

    // HNSW is left out of the BenchmarkDotNet run: building its graph at 100k took 470-640 s here; `vector-survey` measures it.
    [Params("exact-f32", "exact-i8")]
    public string Candidate { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _index = Create(Candidate);
        foreach (var (id, vector) in Stored(Entries))
        {
            _index.Add(id, vector);
        }
        _queries = Near(Entries, 256, 7);
    }

    [GlobalCleanup]
    public void Cleanup() => _index.Dispose();

    [Benchmark]
    public (long, float)? Lookup() => _index.Nearest(_queries[_next++ & 255]);

    public static INearestIndex Create(string candidate) => candidate switch
    {
        "exact-f32" => new ExactFloatCandidate(Dimensions),
        "exact-i8" => new ExactInt8Candidate(Dimensions),
        "hnsw-f32" => new UsearchCandidate(Dimensions, ScalarKind.Float32, 16, 128, 64),
        "hnsw-f32-ef128" => new UsearchCandidate(Dimensions, ScalarKind.Float32, 16, 128, 128),
        "hnsw-i8" => new UsearchCandidate(Dimensions, ScalarKind.Int8, 16, 128, 64),
        _ => throw new ArgumentOutOfRangeException(nameof(candidate), candidate, "unknown candidate"),
    };

    /// <summary>The stored vectors: seeded, uniform components, normalised.</summary>
    public static IEnumerable<(long Id, float[] Vector)> Stored(int count)
    {
        var random = new Random(42);
        for (var i = 0; i < count; i++)
        {
            yield return (i, RandomUnit(random));
        }
    }

    /// <summary>Queries that lie near a stored vector (cosine about 0.9): the regime of a cache hit.</summary>
    public static float[][] Near(int entries, int count, int seed)
    {
        var stored = Stored(entries).Select(s => s.Vector).ToArray();
        var random = new Random(seed);
        var queries = new float[count][];
        for (var q = 0; q < count; q++)
        {
            var query = (float[])stored[random.Next(entries)].Clone();
            var noise = RandomUnit(random);
            for (var d = 0; d < Dimensions; d++)
            {
                query[d] += 0.48f * noise[d]; // |noise| = 1: cosine to the stored vector = 1 / sqrt(1 + 0.48^2) = 0.90
            }
            VectorIndex.Normalise(query);
            queries[q] = query;
        }
        return queries;
    }

    /// <summary>Queries unrelated to any stored vector: the regime of a miss, and the hard case for a graph index.</summary>
    public static float[][] Unrelated(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => RandomUnit(random))];
    }

    private static float[] RandomUnit(Random random)
    {
        var vector = new float[Dimensions];
        for (var d = 0; d < vector.Length; d++)
        {
            vector[d] = (float)(random.NextDouble() - 0.5);
        }
        VectorIndex.Normalise(vector);
        return vector;
    }

    /// <summary>Per-lookup latency percentiles and recall@1 against the exact float32 scan, for every candidate.</summary>
    public static void Survey(int[] sizes, string[] candidates, int queries)
    {
        Console.WriteLine("| entries | index | build s | near: p50 us | near: p99 us | near: recall@1 | unrelated: p50 us | unrelated: p99 us | unrelated: recall@1 |");
        Console.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var size in sizes)
        {
            var near = Near(size, queries, 7);
            var unrelated = Unrelated(queries, 11);
            using var exact = Create("exact-f32");
            foreach (var (id, vector) in Stored(size))
            {
                exact.Add(id, vector);
            }
            var nearTruth = near.Select(q => exact.Nearest(q)!.Value.Id).ToArray();
            var unrelatedTruth = unrelated.Select(q => exact.Nearest(q)!.Value.Id).ToArray();
            foreach (var candidate in candidates)
            {
                var build = Stopwatch.StartNew();
                using var index = Create(candidate);
                foreach (var (id, vector) in Stored(size))
                {
                    index.Add(id, vector);
                }
                build.Stop();
                var (nearP50, nearP99, nearRecall) = Measure(index, near, nearTruth);
                var (unrelatedP50, unrelatedP99, unrelatedRecall) = Measure(index, unrelated, unrelatedTruth);
                Console.WriteLine($"| {size:N0} | {index.Name} | {build.Elapsed.TotalSeconds:F1} | {nearP50:F1} | {nearP99:F1} | {nearRecall:P1} | {unrelatedP50:F1} | {unrelatedP99:F1} | {unrelatedRecall:P1} |");
            }
        }
    }

    private static (double P50, double P99, double Recall) Measure(INearestIndex index, float[][] queries, long[] truth)
    {
        for (var i = 0; i < Math.Min(50, queries.Length); i++)
        {
            index.Nearest(queries[i]);
        }
        var micros = new double[queries.Length];
        var correct = 0;
        for (var i = 0; i < queries.Length; i++)
        {
            var start = Stopwatch.GetTimestamp();
            var found = index.Nearest(queries[i]);
            micros[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            if (found?.Id == truth[i])
            {
                correct++;
            }
        }
        Array.Sort(micros);
        return (micros[(int)(0.50 * (micros.Length - 1))], micros[(int)(0.99 * (micros.Length - 1))], (double)correct / queries.Length);
    }

    private sealed class PercentileConfig : ManualConfig
    {
        public PercentileConfig() => AddColumn(StatisticColumn.P50, StatisticColumn.P95, StatisticColumn.Max);
    }
}
