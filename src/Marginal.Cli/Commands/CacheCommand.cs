using System.CommandLine;
using System.CommandLine.Invocation;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using Marginal.Gateway.Caching;
using Marginal.Gateway.Configuration;
using Marginal.Gateway.Embeddings;
using Marginal.Lab.Caching;

namespace Marginal.Cli.Commands;

/// <summary><c>marginal cache eval</c>: the semantic cache on paraphrase pairs, by GPTCache's procedure.</summary>
internal static class CacheCommand
{
    /// <summary>GPTCache's published rows (examples/benchmark, ONNX embedding, SQLite + FAISS): threshold, positives, false hits, misses.</summary>
    private static readonly (double Threshold, int Positives, int FalseHits, int Misses)[] GptCache = [(0.95, 425, 25, 549), (0.90, 804, 77, 118), (0.80, 904, 92, 3)];

    private static readonly double[] Sweep = [0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.95, 0.97, 0.99];

    private static readonly double[] CheckThresholds = [0.80, 0.85, 0.90];

    private static readonly SemanticCacheConfig Defaults = new();

    private const string Ensemble = "ensemble (minilm + arctic-xs with prefix)";

    public static Command Create() => new("cache", "The response cache.") { Eval() };

    private static Command Eval()
    {
        var data = new Option<string?>("--data") { Description = "JSON array of {origin, similar} pairs (GPTCache's mock_data.json)." };
        var threshold = new Option<double?>("--threshold") { Description = "Also report this cosine threshold." };
        var only = new Option<string?>("--only") { Description = "Print one section only: alignment (token alignment and the k-fold section with MiniLM, about 7 minutes on 2 cores), or kfold (the k-fold section alone, MiniLM and the ensemble, about 12 minutes)." };
        var command = new Command("eval", "Positives, false hits and misses of the semantic cache (MiniLM embeddings, exact search) at a sweep of thresholds.") { data, threshold, only };
        command.Action = new Evaluate(async (parse, cancellationToken) =>
        {
            const string name = "marginal cache eval";
            var path = parse.GetValue(data);
            var extra = parse.GetValue(threshold);
            var section = parse.GetValue(only);
            if (string.IsNullOrWhiteSpace(path))
            {
                return await BadInputAsync($"{name}: --data FILE is required");
            }
            if (extra is not null and not (> 0 and <= 1))
            {
                return await BadInputAsync($"{name}: --threshold: must be above 0 and at most 1, got {extra}");
            }
            if (section is not null and not ("alignment" or "kfold"))
            {
                return await BadInputAsync($"{name}: --only: '{section}' is not allowed (allowed: alignment, kfold)");
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
            if (section == "alignment")
            {
                await Console.Out.WriteAsync(await Task.Run(() => AlignmentReport(pairs, [("minilm", queries)], minilm, cancellationToken), cancellationToken));
                return 0;
            }
            if (section == "kfold")
            {
                var arctic = new Memo(ArcticXsEmbeddingGenerator.Shared);
                var ensemble = await Task.Run(() => CacheEvaluation.Prepare(pairs, texts => EnsembleEmbeddingGenerator.Combine([minilm.Embed(texts, cancellationToken), arctic.Embed(texts, cancellationToken)])), cancellationToken);
                await Console.Out.WriteAsync(await Task.Run(() => AlignmentReport(pairs, [("minilm", queries), (Ensemble, ensemble)], minilm, cancellationToken, kfoldOnly: true), cancellationToken));
                return 0;
            }
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
            (Ensemble, CacheEvaluation.Prepare(pairs, texts => EnsembleEmbeddingGenerator.Combine([minilm.Embed(texts, cancellationToken), arcticPrefixed.Embed(texts, cancellationToken)]))),
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
        w.Write(AlignmentReport(pairs, [models[0], models[3]], minilm, cancellationToken));
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
            Func<EvaluatedQuery, (string, double[])> Lexical(double weight) => q => Memoised(cached, (q, weight), () => LexicalFeatures.Of(q, terms, weight));
            foreach (var seed in new[] { 42, 1, 2 })
            {
                var (ambiguity, ambiguityThreshold, _) = HitClassifier.EvaluateCrossValidated(queries, seed, [q => (q.Matched, HitClassifier.FeaturesOf(q, ambiguity: true))]);
                var (lexical, lexicalThreshold, _) = HitClassifier.EvaluateCrossValidated(queries, seed, [Lexical(0)]);
                var (rerank, rerankThreshold, option) = HitClassifier.EvaluateCrossValidated(queries, seed, [.. RerankWeights.Select(Lexical)]);
                w.WriteLine($"| {name} | {seed} | {Share(ambiguity)} at {ambiguityThreshold:0.000} | {Share(lexical)} at {lexicalThreshold:0.000} | {Share(rerank)} at {rerankThreshold:0.000}, w {RerankWeights[option]:0.00} |");
                Tally(totals, name, [("ambiguity", ambiguity), ("lexical", lexical), ("rerank", rerank)]);
            }
        }
        w.WriteLine();
        w.WriteLine("The same, the three seeds pooled (1,500 held-out queries): positives % / false hits % (false hits as a count):");
        w.WriteLine();
        w.WriteLine("| embeddings | classifier + ambiguity (CV threshold) | + lexical | + lexical, rerank |");
        w.WriteLine("| --- | --- | --- | --- |");
        WritePooled(w, models, ["ambiguity", "lexical", "rerank"], totals);
        return w.ToString();
    }

    /// <summary>Alignment rerank weights (w_a) and lexical rerank weights (w_l) combined in the alignment rerank; the pair kept is chosen by inner cross-validation on each training half.</summary>
    private static readonly double[] AlignmentWeights = [0.1, 0.3, 1.0];

    private static readonly double[] AlignmentLexicalWeights = [0, 0.1, 0.3];

    /// <summary>
    /// Token alignment (<see cref="TokenAlignment"/>, MiniLM's token vectors): the check that the token output read is
    /// the one the package pools, what the vectors would cost a cache entry, how often the alignment rerank chooses the
    /// right candidate, and the classifier with the lexical and alignment features held out on the same seeded halves,
    /// every choice (word weights, rerank weights, threshold) made by inner cross-validation on the training half.
    /// </summary>
    private static string AlignmentReport(List<ParaphrasePair> pairs, (string Name, List<EvaluatedQuery> Queries)[] models, Memo minilm, CancellationToken cancellationToken, bool kfoldOnly = false)
    {
        var terms = LexicalFeatures.TermsOf(pairs.Select(p => p.Origin));
        var texts = pairs.SelectMany(p => new[] { p.Origin, p.Similar }).Distinct(StringComparer.Ordinal).ToArray();
        var tokens = new Dictionary<string, TokenVectors>(StringComparer.Ordinal);
        foreach (var chunk in texts.Chunk(32))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var vectors = MiniLmTokenEncoder.Shared.Encode(chunk);
            for (var i = 0; i < chunk.Length; i++)
            {
                tokens[chunk[i]] = vectors[i];
            }
        }
        var sentences = minilm.Embed(texts, cancellationToken);
        var agreement = texts.Select((t, i) => (double)TensorPrimitives.Dot(tokens[t].SentenceVector, sentences[i])).ToArray();
        var origins = pairs.Select(p => p.Origin).Distinct(StringComparer.Ordinal).Select(o => tokens[o]).ToArray();
        var meanTokens = origins.Average(o => o.Count);
        var idf = TokenAlignment.IdfWeights(terms);
        var scores = new Dictionary<(string, string, bool), AlignmentScore>();
        Func<string, string, AlignmentScore> Align(bool weighted) =>
            (query, candidate) => Memoised(scores, (query, candidate, weighted), () => TokenAlignment.Score(tokens[query], tokens[candidate], weighted ? idf : null));
        if (kfoldOnly)
        {
            return KFoldReport(models, terms, Align);
        }
        var w = new StringWriter(CultureInfo.InvariantCulture);
        w.WriteLine();
        w.WriteLine($"Token alignment (BERTScore: greedy best cosine per token of MiniLM's last_hidden_state, [CLS]/[SEP] left out). Check: mean-pooling those outputs against the package's sentence vector over the {texts.Length} distinct texts: cosine min {agreement.Min():0.000000}, mean {agreement.Average():0.000000}. Cached prompts have {meanTokens:0.0} tokens on average (max {origins.Max(o => o.Count)}): {meanTokens * MiniLmEmbeddingGenerator.Dimensions * sizeof(float):0} bytes per entry as float32 token vectors ({meanTokens * MiniLmEmbeddingGenerator.Dimensions:0} as int8), against {MiniLmEmbeddingGenerator.Dimensions * sizeof(float)} for the sentence vector.");
        w.WriteLine();
        w.WriteLine($"Alignment rerank of the {CacheEvaluation.Shortlist} nearest cached prompts by cosine + w x F1: how often the chosen candidate is the right one, all queries (plain: every token weighs 1; idf: tokens weighted by their word's IDF over the {terms.Count} cached prompts):");
        w.WriteLine();
        double[] shown = [0, 0.1, 0.2, 0.3, 0.5, 1.0];
        w.WriteLine($"| embeddings | weights | {string.Join(" | ", shown.Select(x => $"w = {x:0.00}"))} |");
        w.WriteLine($"| --- | --- | {string.Join(" | ", shown.Select(_ => "---"))} |");
        foreach (var (name, queries) in models)
        {
            foreach (var weighted in new[] { false, true })
            {
                w.WriteLine($"| {name} | {(weighted ? "idf" : "plain")} | {string.Join(" | ", shown.Select(x => $"{queries.Count(q => AlignmentFeatures.Of(q, terms, Align(weighted), 0, x).Matched == q.Expected)} of {queries.Count}"))} |");
            }
        }
        w.WriteLine();
        w.WriteLine("Held out, thresholds and every choice by 5-fold cross-validation inside the training half, as in the lexical table (the + lexical columns repeat it for comparison). + alignment adds F1(q, c1), F1(q, c1) - F1(q, c2), and the lowest content-word match of the query in c1 and of c1 in the query; plain or idf token weights chosen inside the training half. Rerank: c1, c2 = the best two of the 5 by cosine + w_l x weighted Jaccard + w_a x F1, w_l from " + string.Join(", ", AlignmentLexicalWeights.Select(x => x.ToString("0.0", CultureInfo.InvariantCulture))) + ", w_a from 0, " + string.Join(", ", AlignmentWeights.Select(x => x.ToString("0.0", CultureInfo.InvariantCulture))) + " (not both 0), chosen the same way. Every candidate scored: one classifier over all 5 candidates of a query (per candidate: the classifier's features, its lead over the best other candidate in cosine, weighted Jaccard, special-token coverage and F1, its highest cosine to another candidate, the lowest word matches and its position), the candidate of highest probability answers if that probability reaches the threshold:");
        w.WriteLine();
        w.WriteLine("| embeddings | seed | + lexical | + lexical, rerank | + lexical + alignment | + lexical + alignment, rerank | every candidate scored |");
        w.WriteLine("| --- | --- | --- | --- | --- | --- | --- |");
        var settings = new List<(bool Weighted, double Lexical, double Alignment)>();
        foreach (var weighted in new[] { false, true })
        {
            foreach (var lexical in AlignmentLexicalWeights)
            {
                foreach (var alignment in AlignmentWeights.Prepend(0))
                {
                    if (lexical != 0 || alignment != 0)
                    {
                        settings.Add((weighted, lexical, alignment));
                    }
                }
            }
        }
        var totals = new Dictionary<(string, string), (int Positives, int FalseHits, int Count)>();
        foreach (var (name, queries) in models)
        {
            var lexicalMemo = new Dictionary<(EvaluatedQuery, double), (string, double[])>();
            var alignedMemo = new Dictionary<(EvaluatedQuery, bool, double, double), (string, double[])>();
            Func<EvaluatedQuery, (string, double[])> Lexical(double weight) => q => Memoised(lexicalMemo, (q, weight), () => LexicalFeatures.Of(q, terms, weight));
            Func<EvaluatedQuery, (string, double[])> Aligned((bool Weighted, double Lexical, double Alignment) s) =>
                q => Memoised(alignedMemo, (q, s.Weighted, s.Lexical, s.Alignment), () => AlignmentFeatures.Of(q, terms, Align(s.Weighted), s.Lexical, s.Alignment));
            foreach (var seed in new[] { 42, 1, 2 })
            {
                var (lexical, lexicalThreshold, _) = HitClassifier.EvaluateCrossValidated(queries, seed, [Lexical(0)]);
                var (rerank, rerankThreshold, rerankOption) = HitClassifier.EvaluateCrossValidated(queries, seed, [.. RerankWeights.Select(Lexical)]);
                var (aligned, alignedThreshold, alignedOption) = HitClassifier.EvaluateCrossValidated(queries, seed, [Aligned((false, 0, 0)), Aligned((true, 0, 0))]);
                var (both, bothThreshold, bothOption) = HitClassifier.EvaluateCrossValidated(queries, seed, [.. settings.Select(Aligned)]);
                var (each, eachThreshold, eachOption) = HitClassifier.EvaluateCandidatesCrossValidated(queries, seed,
                    [q => AlignmentFeatures.OfCandidates(q, terms, Align(false)), q => AlignmentFeatures.OfCandidates(q, terms, Align(true))]);
                var chosen = settings[bothOption];
                w.WriteLine($"| {name} | {seed} | {Share(lexical)} at {lexicalThreshold:0.000} | {Share(rerank)} at {rerankThreshold:0.000}, w {RerankWeights[rerankOption]:0.00} | {Share(aligned)} at {alignedThreshold:0.000}, {Weights(alignedOption == 1)} | {Share(both)} at {bothThreshold:0.000}, {Weights(chosen.Weighted)}, w_l {chosen.Lexical:0.0}, w_a {chosen.Alignment:0.0} | {Share(each)} at {eachThreshold:0.000}, {Weights(eachOption == 1)} |");
                Tally(totals, name, [("lexical", lexical), ("rerank", rerank), ("aligned", aligned), ("both", both), ("each", each)]);
            }
        }
        w.WriteLine();
        w.WriteLine("The same, the three seeds pooled (1,500 held-out queries): positives % / false hits % (counts):");
        w.WriteLine();
        w.WriteLine("| embeddings | + lexical | + lexical, rerank | + lexical + alignment | + lexical + alignment, rerank | every candidate scored |");
        w.WriteLine("| --- | --- | --- | --- | --- | --- |");
        WritePooled(w, models, ["lexical", "rerank", "aligned", "both", "each"], totals);
        w.Write(KFoldReport(models, terms, Align));
        return w.ToString();
    }

    private static readonly int[] Seeds = [42, 1, 2];

    /// <summary>The two token weightings (plain, idf), in option order.</summary>
    private static readonly bool[] PlainAndIdf = [false, true];

    /// <summary>
    /// More training data per model and a non-linear second stage: "+ lexical + alignment" (no rerank) and "every
    /// candidate scored", each with the logistic model and with <see cref="HitNetwork"/>, under the seeded halves and
    /// under 10-fold cross-validation over all queries (<see cref="HitClassifier.EvaluateKFold"/>), plain or idf token
    /// weights chosen inside each training set. Every (query, option) is described once and reused by every fold, seed
    /// and model.
    /// </summary>
    private static string KFoldReport((string Name, List<EvaluatedQuery> Queries)[] models, TermFrequencies terms, Func<bool, Func<string, string, AlignmentScore>> align)
    {
        var w = new StringWriter(CultureInfo.InvariantCulture);
        w.WriteLine();
        w.WriteLine($"More training data per model: 10-fold cross-validation over all queries (folds by a seeded shuffle; each query scored once per seed by a model fitted on the other ~899, its threshold the lowest with out-of-fold false hits <= 1% of those by inner 5-fold cross-validation, plain or idf weights chosen the same way), beside the seeded halves (499 training queries, 4 false hits allowed). Second stage: linear = the logistic model above; network = {HitNetwork.Hidden} tanh units, logistic output, full-batch Adam, {HitNetwork.Steps} steps, step {HitNetwork.LearningRate}, L2 {HitNetwork.L2}, seed 42. Per seed: positive / false hit / miss (positives % / false hits %) and the threshold (k-fold: lowest-highest of the 10 folds):");
        w.WriteLine();
        w.WriteLine("| embeddings | variant | second stage | protocol | seed 42 | seed 1 | seed 2 | pooled: positives % / false hits % (counts) |");
        w.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
        (string Name, HitTrainer Trainer)[] stages = [("linear", HitClassifier.Train), ("network", HitNetwork.Train)];
        foreach (var (name, queries) in models)
        {
            var alignedMemo = new Dictionary<(EvaluatedQuery, bool), (string, double[])>();
            var candidatesMemo = new Dictionary<(EvaluatedQuery, bool), double[][]>();
            Func<EvaluatedQuery, (string, double[])>[] aligned = [.. PlainAndIdf.Select(weighted => (Func<EvaluatedQuery, (string, double[])>)(q =>
                Memoised(alignedMemo, (q, weighted), () => AlignmentFeatures.Of(q, terms, align(weighted), 0, 0))))];
            Func<EvaluatedQuery, double[][]>[] candidates = [.. PlainAndIdf.Select(weighted => (Func<EvaluatedQuery, double[][]>)(q =>
                Memoised(candidatesMemo, (q, weighted), () => AlignmentFeatures.OfCandidates(q, terms, align(weighted)))))];
            foreach (var (variant, each) in new[] { ("+ lexical + alignment", false), ("every candidate scored", true) })
            {
                foreach (var (stage, trainer) in stages)
                {
                    var halves = Seeds.Select(seed => each
                        ? HitClassifier.EvaluateCandidatesCrossValidated(queries, seed, candidates, trainer: trainer)
                        : HitClassifier.EvaluateCrossValidated(queries, seed, aligned, trainer: trainer)).ToArray();
                    w.WriteLine($"| {name} | {variant} | {stage} | halves | {string.Join(" | ", halves.Select(h => $"{Share(h.Test)} at {h.Threshold:0.000}"))} | {Pooled(halves.Select(h => h.Test))} |");
                    var kfold = Seeds.Select(seed => each
                        ? HitClassifier.EvaluateCandidatesKFold(queries, seed, candidates, trainer)
                        : HitClassifier.EvaluateKFold(queries, seed, aligned, trainer)).ToArray();
                    w.WriteLine($"| {name} | {variant} | {stage} | 10-fold | {string.Join(" | ", kfold.Select(k => $"{Share(k.Row)} at {k.LowestThreshold:0.000}-{k.HighestThreshold:0.000}"))} | {Pooled(kfold.Select(k => k.Row))} |");
                }
            }
        }
        return w.ToString();
    }

    private static string Pooled(IEnumerable<CacheEvalRow> rows)
    {
        var (p, f, n) = rows.Aggregate((0, 0, 0), (t, r) => (t.Item1 + r.Positives, t.Item2 + r.FalseHits, t.Item3 + r.Positives + r.FalseHits + r.Misses));
        return $"{100.0 * p / n:0.0}% / {100.0 * f / n:0.0}% ({p} / {f} of {n})";
    }

    /// <summary>Adds each rule's held-out row of one seed to the pooled counts of model <paramref name="name"/>.</summary>
    private static void Tally(Dictionary<(string, string), (int Positives, int FalseHits, int Count)> totals, string name, (string Rule, CacheEvalRow Row)[] rows)
    {
        foreach (var (rule, row) in rows)
        {
            var t = totals.GetValueOrDefault((name, rule));
            totals[(name, rule)] = (t.Positives + row.Positives, t.FalseHits + row.FalseHits, t.Count + row.Positives + row.FalseHits + row.Misses);
        }
    }

    /// <summary>One table row per model: each rule's pooled positives % / false hits % and counts.</summary>
    private static void WritePooled(StringWriter w, (string Name, List<EvaluatedQuery> Queries)[] models, string[] rules, Dictionary<(string, string), (int Positives, int FalseHits, int Count)> totals)
    {
        foreach (var (name, _) in models)
        {
            w.Write($"| {name} |");
            foreach (var rule in rules)
            {
                var (p, f, n) = totals[(name, rule)];
                w.Write($" {100.0 * p / n:0.0}% / {100.0 * f / n:0.0}% ({p} / {f} of {n}) |");
            }
            w.WriteLine();
        }
    }

    private static string Weights(bool idf) => idf ? "idf" : "plain";

    private static TValue Memoised<TKey, TValue>(Dictionary<TKey, TValue> memo, TKey key, Func<TValue> compute) where TKey : notnull
    {
        if (!memo.TryGetValue(key, out var value))
        {
            memo[key] = value = compute();
        }
        return value;
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

    private static readonly double[] NearDuplicateCuts = [0.90, 0.95, 0.97, 0.99];

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
        w.WriteLine();
        w.WriteLine("Near-duplicate cached prompts (two cached prompts whose cosine to each other is at least the cut), where a second stage must tell them apart from a few words:");
        w.WriteLine();
        w.WriteLine("| cut | nearest wrong: its cached prompt a near-duplicate of the right one (letter case the only difference) | queries whose two nearest are near-duplicates: nearest right |");
        w.WriteLine("| --- | --- | --- |");
        foreach (var cut in NearDuplicateCuts)
        {
            var counts = CacheEvaluation.NearDuplicates(queries, cut);
            w.WriteLine($"| {cut:0.00} | {counts.NearestWrongNearDuplicate} of {counts.NearestWrong} ({counts.NearestWrongCaseOnly}) | {counts.TopTwoNearDuplicates}: {counts.TopTwoNearestRight} |");
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
