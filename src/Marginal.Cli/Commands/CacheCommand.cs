using System.CommandLine;
using System.CommandLine.Invocation;
using System.Globalization;
using System.Text.Json;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Embeddings;

namespace Marginal.Cli.Commands;

/// <summary><c>marginal cache eval</c>: the semantic cache on paraphrase pairs, by GPTCache's procedure.</summary>
internal static class CacheCommand
{
    /// <summary>GPTCache's published rows (examples/benchmark, ONNX embedding, SQLite + FAISS): threshold, positives, false hits, misses.</summary>
    private static readonly (double Threshold, int Positives, int FalseHits, int Misses)[] GptCache = [(0.95, 425, 25, 549), (0.90, 804, 77, 118), (0.80, 904, 92, 3)];

    private static readonly double[] Sweep = [0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.95, 0.97, 0.99];

    private static readonly double[] CheckThresholds = [0.80, 0.85, 0.90];

    public static Command Create() => new("cache", "The response cache.") { Eval() };

    private static Command Eval()
    {
        var data = new Option<string?>("--data") { Description = "JSON array of {origin, similar} pairs (GPTCache's mock_data.json)." };
        var threshold = new Option<double?>("--threshold") { Description = "Also report this cosine threshold." };
        var command = new Command("eval", "Positives, false hits and misses of the semantic cache (MiniLM embeddings, exact search) at a sweep of thresholds.") { data, threshold };
        command.Action = new Evaluate(async (parse, cancellationToken) =>
        {
            const string name = "marginal cache eval";
            var path = parse.GetValue(data);
            var extra = parse.GetValue(threshold);
            if (string.IsNullOrWhiteSpace(path))
            {
                return await BadInputAsync($"{name}: --data FILE is required");
            }
            if (extra is not null and not (> 0 and <= 1))
            {
                return await BadInputAsync($"{name}: --threshold: must be above 0 and at most 1, got {extra}");
            }
            List<ParaphrasePair>? pairs;
            try
            {
                pairs = ReadPairs(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return await BadInputAsync($"{name}: {path}: cannot read: {ex.Message}");
            }
            catch (JsonException ex)
            {
                return await BadInputAsync($"{name}: {path}: not a JSON array of {{\"origin\", \"similar\"}} strings ({ex.Message})");
            }
            if (pairs is null || pairs.Count == 0 || pairs.Any(p => string.IsNullOrEmpty(p.Origin) || string.IsNullOrEmpty(p.Similar)))
            {
                return await BadInputAsync($"{name}: {path}: every element needs non-empty \"origin\" and \"similar\" strings");
            }
            var queries = await Task.Run(() => CacheEvaluation.Prepare(pairs, texts => Embed(texts, cancellationToken)), cancellationToken);
            await Console.Out.WriteAsync(Report(pairs, queries, extra));
            return 0;
        });
        return command;
    }

    private static float[][] Embed(IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        var vectors = new List<float[]>(texts.Count);
        foreach (var chunk in texts.Chunk(32))
        {
            vectors.AddRange(MiniLmEmbeddingGenerator.Shared.Embed(chunk, cancellationToken));
        }
        return [.. vectors];
    }

    private static List<ParaphrasePair>? ReadPairs(string path)
    {
        using var file = File.OpenRead(path);
        using var json = JsonDocument.Parse(file);
        if (json.RootElement.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        var pairs = new List<ParaphrasePair>();
        foreach (var item in json.RootElement.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("origin", out var origin) || !item.TryGetProperty("similar", out var similar)
                || origin.ValueKind != JsonValueKind.String || similar.ValueKind != JsonValueKind.String)
            {
                return null;
            }
            pairs.Add(new ParaphrasePair(origin.GetString()!, similar.GetString()!));
        }
        return pairs;
    }

    private static string Report(List<ParaphrasePair> pairs, List<EvaluatedQuery> queries, double? extra)
    {
        var all = CacheEvaluation.Variants[^1];
        var bare = CacheEvaluation.Variants[0];
        var w = new StringWriter(CultureInfo.InvariantCulture);
        w.WriteLine($"{pairs.Count} queries, {CacheEvaluation.DistinctOrigins(pairs)} distinct origins cached (identical origin texts are one entry; finding that text is a positive). MiniLM (all-MiniLM-L6-v2), exact cosine search.");
        w.WriteLine();
        w.WriteLine("| threshold | cosine only: positive / false hit / miss | all checks: positive / false hit / miss |");
        w.WriteLine("| --- | --- | --- |");
        foreach (var t in Sweep.Concat(extra is { } x ? [x] : []).Distinct().Order())
        {
            var plain = CacheEvaluation.Score(queries, t, bare.Checks, bare.Name);
            var checkedRow = CacheEvaluation.Score(queries, t, all.Checks, all.Name);
            w.WriteLine($"| {t:0.00} | {Counts(plain)} | {Counts(checkedRow)} |");
        }
        w.WriteLine();
        w.WriteLine("At GPTCache's false-hit counts (lowest threshold, 0.001 steps, with at most that many false hits):");
        w.WriteLine();
        w.WriteLine("| GPTCache threshold | GPTCache positive / false hit / miss | MiniLM cosine only | MiniLM all checks |");
        w.WriteLine("| --- | --- | --- | --- |");
        foreach (var (t, p, f, m) in GptCache)
        {
            w.WriteLine($"| {t:0.00} | {p} / {f} / {m} | {At(CacheEvaluation.AtFalseHits(queries, f, bare.Checks, bare.Name))} | {At(CacheEvaluation.AtFalseHits(queries, f, all.Checks, all.Name))} |");
        }
        w.WriteLine();
        w.WriteLine("What each check costs in positives and saves in false hits (against cosine only):");
        w.WriteLine();
        w.WriteLine("| threshold | check | positives lost | false hits removed |");
        w.WriteLine("| --- | --- | --- | --- |");
        foreach (var t in CheckThresholds.Concat(extra is { } y ? [y] : []).Distinct().Order())
        {
            var plain = CacheEvaluation.Score(queries, t, bare.Checks, bare.Name);
            foreach (var (variantName, checks) in CacheEvaluation.Variants.Skip(1))
            {
                var row = CacheEvaluation.Score(queries, t, checks, variantName);
                w.WriteLine($"| {t:0.00} | {variantName} | {plain.Positives - row.Positives} | {plain.FalseHits - row.FalseHits} |");
            }
        }
        w.WriteLine();
        var limit = (int)(0.01 * queries.Count);
        foreach (var (variantName, checks) in new[] { bare, all })
        {
            var best = CacheEvaluation.BestWithin(queries, 0.01, checks, variantName);
            w.WriteLine(best is null
                ? $"{variantName}: no threshold keeps false hits at or below 1% ({limit})."
                : $"{variantName}: best operating point with false hits <= 1% ({limit}): threshold {best.Threshold:0.000}: {Counts(best)} ({100.0 * best.Positives / queries.Count:0.0}% positives, {100.0 * best.FalseHits / queries.Count:0.0}% false hits).");
        }
        w.WriteLine();
        w.WriteLine("Second stage (HitClassifier: logistic regression over cosine, word overlap, length ratio and the three checks), trained on a seeded half, thresholds chosen on that half for <= 1% false hits, scored on the held-out half:");
        w.WriteLine();
        w.WriteLine("| seed | held-out queries | cosine + all checks (threshold from the training half) | classifier (probability threshold from the training half) |");
        w.WriteLine("| --- | --- | --- | --- |");
        foreach (var seed in new[] { 42, 1, 2 })
        {
            var (baseline, classifier, cosine, probability) = HitClassifier.Evaluate(queries, seed);
            var total = baseline.Positives + baseline.FalseHits + baseline.Misses;
            w.WriteLine($"| {seed} | {total} | {Counts(baseline)} at {cosine:0.000} ({100.0 * baseline.Positives / total:0.0}% / {100.0 * baseline.FalseHits / total:0.0}%) | {Counts(classifier)} at {probability:0.000} ({100.0 * classifier.Positives / total:0.0}% / {100.0 * classifier.FalseHits / total:0.0}%) |");
        }
        return w.ToString();
    }

    private static string Counts(CacheEvalRow row) => $"{row.Positives} / {row.FalseHits} / {row.Misses}";

    private static string At(CacheEvalRow? row) => row is null ? "not reached" : $"{Counts(row)} at {row.Threshold:0.000}";

    private static async Task<int> BadInputAsync(string message)
    {
        await Console.Error.WriteLineAsync(message);
        return MarginalCommand.BadInput;
    }

    private sealed class Evaluate(Func<ParseResult, CancellationToken, Task<int>> action) : AsynchronousCommandLineAction
    {
        public override Task<int> InvokeAsync(ParseResult parseResult, CancellationToken cancellationToken = default) => action(parseResult, cancellationToken);
    }
}
