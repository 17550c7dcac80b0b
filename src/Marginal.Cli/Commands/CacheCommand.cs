using System.CommandLine;
using System.CommandLine.Invocation;
using System.Globalization;
using System.Text.Json;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Embeddings;

namespace Marginal.Cli.Commands;

/// <summary><c>marginal cache eval</c>: the semantic cache on paraphrase pairs, by GPTCache's procedure.</summary>
internal static class CacheCommand
{
    /// <summary>GPTCache's published rows (examples/benchmark, ONNX embedding, SQLite + FAISS): threshold, positives, false hits, misses.</summary>
    private static readonly (double Threshold, int Positives, int FalseHits, int Misses)[] GptCache = [(0.95, 425, 25, 549), (0.90, 804, 77, 118), (0.80, 904, 92, 3)];

    private static readonly double[] Sweep = [0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.95, 0.97, 0.99];

    private static readonly double[] CheckThresholds = [0.80, 0.85, 0.90];

    private static readonly SemanticCacheConfig Defaults = new();

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
            var minilm = new Memo(MiniLmEmbeddingGenerator.Shared);
            var queries = await Task.Run(() => CacheEvaluation.Prepare(pairs, texts => minilm.Embed(texts, cancellationToken)), cancellationToken);
            await Console.Out.WriteAsync(Report(pairs, queries, extra));
            await Console.Out.WriteAsync(await Task.Run(() => ModelsReport(pairs, queries, minilm, cancellationToken), cancellationToken));
            return 0;
        });
        return command;
    }

    /// <summary>A model's vectors kept in memory for one run, so every variant and threshold reuses them (embedding 1,963 texts takes about a minute of CPU).</summary>
    private sealed class Memo(InProcessEmbeddingGenerator generator)
    {
        private readonly Dictionary<string, float[]> _vectors = new(StringComparer.Ordinal);

        public float[][] Embed(IReadOnlyList<string> texts, CancellationToken cancellationToken)
        {
            var missing = texts.Where(t => !_vectors.ContainsKey(t)).Distinct(StringComparer.Ordinal).ToArray();
            foreach (var chunk in missing.Chunk(32))
            {
                var vectors = generator.Embed(chunk, cancellationToken);
                for (var i = 0; i < chunk.Length; i++)
                {
                    _vectors[chunk[i]] = vectors[i];
                }
            }
            return [.. texts.Select(t => _vectors[t])];
        }
    }

    /// <summary>
    /// The embedding models and the ambiguity lever side by side, each with all checks: in-sample and on the held-out
    /// halves (seeds 42, 1, 2), for the threshold rule, the threshold plus a minimum margin, and the classifier with the
    /// margin features.
    /// </summary>
    private static string ModelsReport(List<ParaphrasePair> pairs, List<EvaluatedQuery> minilmQueries, Memo minilm, CancellationToken cancellationToken)
    {
        using var unprefixed = new ArcticXsEmbeddingGenerator();
        var arctic = new Memo(unprefixed);
        var arcticPrefixed = new Memo(ArcticXsEmbeddingGenerator.Shared);
        var models = new (string Name, List<EvaluatedQuery> Queries)[]
        {
            ("minilm", minilmQueries),
            ("arctic-xs, no prefix", CacheEvaluation.Prepare(pairs, texts => arctic.Embed(texts, cancellationToken))),
            ("arctic-xs, query prefix", CacheEvaluation.Prepare(pairs, texts => arcticPrefixed.Embed(texts, cancellationToken))),
            ("ensemble (minilm + arctic-xs with prefix)", CacheEvaluation.Prepare(pairs, texts => EnsembleEmbeddingGenerator.Combine([minilm.Embed(texts, cancellationToken), arcticPrefixed.Embed(texts, cancellationToken)]))),
        };
        var all = PromptChecks.All;
        var w = new StringWriter(CultureInfo.InvariantCulture);
        w.WriteLine();
        w.WriteLine("Embedding models (same procedure; ensemble = mean of the two cosines, as concatenated normalised vectors), cosine only at GPTCache's thresholds, and how often the nearest origin is the right one:");
        w.WriteLine();
        w.WriteLine("| embeddings | nearest is right | 0.95: positive / false hit / miss | 0.90 | 0.80 |");
        w.WriteLine("| --- | --- | --- | --- | --- |");
        foreach (var (name, queries) in models)
        {
            var right = queries.Count(q => q.Matched == q.Expected);
            w.WriteLine($"| {name} | {right} of {queries.Count} | {Counts(CacheEvaluation.Score(queries, 0.95, [], name))} | {Counts(CacheEvaluation.Score(queries, 0.90, [], name))} | {Counts(CacheEvaluation.Score(queries, 0.80, [], name))} |");
        }
        w.WriteLine();
        w.WriteLine("Best operating point with false hits <= 1%, all checks: threshold alone, and threshold plus a minimum margin (top-1 minus top-2 cosine, 0 to 0.1 in 0.005 steps), in-sample over all queries:");
        w.WriteLine();
        w.WriteLine("| embeddings | threshold: positive / false hit / miss | + min margin: positive / false hit / miss |");
        w.WriteLine("| --- | --- | --- |");
        foreach (var (name, queries) in models)
        {
            var plain = CacheEvaluation.BestWithMargin(queries, 0.01, all, name, [0.0]);
            var margin = CacheEvaluation.BestWithMargin(queries, 0.01, all, name, CacheEvaluation.Margins);
            w.WriteLine($"| {name} | {Point(plain, queries.Count, false)} | {Point(margin, queries.Count, true)} |");
        }
        w.WriteLine();
        w.WriteLine("Held out: chosen on a seeded half for <= 1% false hits (5 of 499), scored on the other 500; all checks. Classifier + ambiguity = HitClassifier with the margin and the similarity of the top two cached prompts to each other as extra features:");
        w.WriteLine();
        w.WriteLine("| embeddings | seed | threshold | threshold + min margin | classifier | classifier + ambiguity |");
        w.WriteLine("| --- | --- | --- | --- | --- | --- |");
        var totals = new Dictionary<(string, string), (int Positives, int FalseHits, int Count)>();
        foreach (var (name, queries) in models)
        {
            foreach (var seed in new[] { 42, 1, 2 })
            {
                var (plain, _) = CacheEvaluation.HeldOut(queries, seed, all, name, [0.0]);
                var (margin, minMargin) = CacheEvaluation.HeldOut(queries, seed, all, name, CacheEvaluation.Margins);
                var (_, classifier, _, _) = HitClassifier.Evaluate(queries, seed);
                var (_, ambiguity, _, _) = HitClassifier.Evaluate(queries, seed, ambiguity: true);
                w.WriteLine($"| {name} | {seed} | {Share(plain)} at {plain.Threshold:0.000} | {Share(margin)} at {margin.Threshold:0.000}, margin {minMargin:0.000} | {Share(classifier)} | {Share(ambiguity)} |");
                foreach (var (rule, row) in new[] { ("threshold", plain), ("margin", margin), ("classifier", classifier), ("ambiguity", ambiguity) })
                {
                    var t = totals.GetValueOrDefault((name, rule));
                    totals[(name, rule)] = (t.Positives + row.Positives, t.FalseHits + row.FalseHits, t.Count + row.Positives + row.FalseHits + row.Misses);
                }
            }
        }
        w.WriteLine();
        w.WriteLine($"Fixed settings, nothing tuned (all checks): the live default threshold {Defaults.Threshold:0.00} without a margin and with the default min_margin {Defaults.MinMargin:0.00}, on all queries and on each seed's held-out half:");
        w.WriteLine();
        w.WriteLine("| embeddings | rule | all queries | seed 42 half | seed 1 half | seed 2 half |");
        w.WriteLine("| --- | --- | --- | --- | --- | --- |");
        foreach (var (name, queries) in models)
        {
            foreach (var margin in new[] { 0, Defaults.MinMargin })
            {
                w.Write($"| {name} | {Defaults.Threshold:0.00}{(margin > 0 ? $" + margin {margin:0.00}" : "")} | {Share(CacheEvaluation.Score(queries, Defaults.Threshold, all, name, margin))} |");
                foreach (var seed in new[] { 42, 1, 2 })
                {
                    w.Write($" {Share(CacheEvaluation.Score(CacheEvaluation.Halves(queries, seed).Test, Defaults.Threshold, all, name, margin))} |");
                }
                w.WriteLine();
            }
        }
        w.WriteLine();
        w.WriteLine("Held out, the three seeds pooled (1,500 held-out queries): positives % / false hits %:");
        w.WriteLine();
        w.WriteLine("| embeddings | threshold | threshold + min margin | classifier | classifier + ambiguity |");
        w.WriteLine("| --- | --- | --- | --- | --- |");
        foreach (var (name, _) in models)
        {
            w.Write($"| {name} |");
            foreach (var rule in new[] { "threshold", "margin", "classifier", "ambiguity" })
            {
                var (p, f, n) = totals[(name, rule)];
                w.Write($" {100.0 * p / n:0.0}% / {100.0 * f / n:0.0}% |");
            }
            w.WriteLine();
        }
        w.Write(LexicalReport(pairs, [models[0], models[3]]));
        return w.ToString();
    }

    /// <summary>Rerank weights tried for the lexical rerank; the one kept is chosen by inner cross-validation on each training half.</summary>
    private static readonly double[] RerankWeights = [0.05, 0.1, 0.2, 0.3, 0.5];

    /// <summary>
    /// The classifier with the ambiguity and lexical features (<see cref="LexicalFeatures"/>), without and with the
    /// lexical rerank, held out on the same seeded halves, every choice (threshold, rerank weight) made by inner
    /// cross-validation on the training half.
    /// </summary>
    private static string LexicalReport(List<ParaphrasePair> pairs, (string Name, List<EvaluatedQuery> Queries)[] models)
    {
        var terms = LexicalFeatures.TermsOf(pairs.Select(p => p.Origin));
        var w = new StringWriter(CultureInfo.InvariantCulture);
        w.WriteLine();
        w.WriteLine($"Lexical rerank of the {CacheEvaluation.Shortlist} nearest cached prompts by cosine + w x IDF-weighted Jaccard (document frequencies over the {terms.Count} cached prompts): how often the chosen candidate is the right one, all queries:");
        w.WriteLine();
        w.WriteLine($"| embeddings | w = 0 (cosine order) | {string.Join(" | ", RerankWeights.Select(x => $"w = {x:0.00}"))} |");
        w.WriteLine($"| --- | --- | {string.Join(" | ", RerankWeights.Select(_ => "---"))} |");
        foreach (var (name, queries) in models)
        {
            w.Write($"| {name} |");
            foreach (var weight in RerankWeights.Prepend(0))
            {
                w.Write($" {queries.Count(q => LexicalFeatures.Of(q, terms, weight).Matched == q.Expected)} of {queries.Count} |");
            }
            w.WriteLine();
        }
        w.WriteLine();
        w.WriteLine("Held out with the threshold chosen by 5-fold cross-validation inside the training half (lowest probability threshold with out-of-fold false hits <= 1%, i.e. 4 of 499); the model is then fitted on the whole training half and scored on the other 500. Ambiguity = the classifier + ambiguity features above; + lexical adds IDF-weighted Jaccard of query and candidate and of the runner-up, and coverage of the candidate's special tokens; rerank w chosen the same way from " + string.Join(", ", RerankWeights.Select(x => x.ToString("0.00", CultureInfo.InvariantCulture))) + ":");
        w.WriteLine();
        w.WriteLine("| embeddings | seed | classifier + ambiguity (CV threshold) | + lexical | + lexical, rerank |");
        w.WriteLine("| --- | --- | --- | --- | --- |");
        var totals = new Dictionary<(string, string), (int Positives, int FalseHits, int Count)>();
        foreach (var (name, queries) in models)
        {
            var cached = new Dictionary<(EvaluatedQuery, double), (string, double[])>();
            Func<EvaluatedQuery, (string, double[])> Lexical(double weight) => q =>
            {
                if (!cached.TryGetValue((q, weight), out var value))
                {
                    cached[(q, weight)] = value = LexicalFeatures.Of(q, terms, weight);
                }
                return value;
            };
            foreach (var seed in new[] { 42, 1, 2 })
            {
                var (ambiguity, ambiguityThreshold, _) = HitClassifier.EvaluateCrossValidated(queries, seed, [q => (q.Matched, HitClassifier.FeaturesOf(q, ambiguity: true))]);
                var (lexical, lexicalThreshold, _) = HitClassifier.EvaluateCrossValidated(queries, seed, [Lexical(0)]);
                var (rerank, rerankThreshold, option) = HitClassifier.EvaluateCrossValidated(queries, seed, [.. RerankWeights.Select(Lexical)]);
                w.WriteLine($"| {name} | {seed} | {Share(ambiguity)} at {ambiguityThreshold:0.000} | {Share(lexical)} at {lexicalThreshold:0.000} | {Share(rerank)} at {rerankThreshold:0.000}, w {RerankWeights[option]:0.00} |");
                foreach (var (rule, row) in new[] { ("ambiguity", ambiguity), ("lexical", lexical), ("rerank", rerank) })
                {
                    var t = totals.GetValueOrDefault((name, rule));
                    totals[(name, rule)] = (t.Positives + row.Positives, t.FalseHits + row.FalseHits, t.Count + row.Positives + row.FalseHits + row.Misses);
                }
            }
        }
        w.WriteLine();
        w.WriteLine("The same, the three seeds pooled (1,500 held-out queries): positives % / false hits % (false hits as a count):");
        w.WriteLine();
        w.WriteLine("| embeddings | classifier + ambiguity (CV threshold) | + lexical | + lexical, rerank |");
        w.WriteLine("| --- | --- | --- | --- |");
        foreach (var (name, _) in models)
        {
            w.Write($"| {name} |");
            foreach (var rule in new[] { "ambiguity", "lexical", "rerank" })
            {
                var (p, f, n) = totals[(name, rule)];
                w.Write($" {100.0 * p / n:0.0}% / {100.0 * f / n:0.0}% ({p} / {f} of {n}) |");
            }
            w.WriteLine();
        }
        return w.ToString();
    }

    private static string Point((CacheEvalRow Row, double MinMargin)? point, int count, bool margin) => point is not var (row, m)
        ? "none"
        : $"{Counts(row)} at {row.Threshold:0.000}{(margin ? $", margin {m:0.000}" : "")} ({100.0 * row.Positives / count:0.0}% / {100.0 * row.FalseHits / count:0.0}%)";

    private static string Share(CacheEvalRow row)
    {
        var total = row.Positives + row.FalseHits + row.Misses;
        return $"{Counts(row)} ({100.0 * row.Positives / total:0.0}% / {100.0 * row.FalseHits / total:0.0}%)";
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
