using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Marginal.Gateway.Routing.Learning;
using Marginal.Lab.Routing;

namespace Marginal.Cli.Commands;

/// <summary>
/// <c>marginal router train</c> and <c>marginal router eval</c>: the learned router over RouteLLM-format correctness data
/// (docs/benchmarks.md, "Router"). Embeddings are cached under the temp folder keyed by the prompts' hash.
/// Bad arguments or data: one line on stderr and exit code 2.
/// </summary>
internal static class RouterCommand
{
    public static Command Create() => new("router", "Train and evaluate the learned router (strong vs weak model from the prompt's embedding).")
    {
        Train(),
        Eval(),
        Calibrate(),
    };

    private sealed record Common(Option<string?> Data, Option<double?> Holdout, Option<int> Seed, Option<string> SplitBy, Option<string> Weak, Option<string> Strong);

    private static Common CommonOptions() => new(
        new Option<string?>("--data") { Description = "RouteLLM-format CSV file or folder (e.g. data/routing/routellm/mmlu)." },
        new Option<double?>("--holdout") { Description = "Share of the data held out for evaluation (0 to 0.9)." },
        new Option<int>("--seed") { Description = "Seed of the split.", DefaultValueFactory = _ => 42 },
        new Option<string>("--split") { Description = "Split by question or by domain.", DefaultValueFactory = _ => "question" },
        new Option<string>("--weak") { Description = "Column of the weak (cheap) model.", DefaultValueFactory = _ => RouteLlmData.DefaultWeak },
        new Option<string>("--strong") { Description = "Column of the strong model.", DefaultValueFactory = _ => RouteLlmData.DefaultStrong });

    private static void Add(Command command, Common common)
    {
        foreach (var option in new Option[] { common.Data, common.Holdout, common.Seed, common.SplitBy, common.Weak, common.Strong })
        {
            command.Options.Add(option);
        }
        command.TreatUnmatchedTokensAsErrors = false;
    }

    private static Command Train()
    {
        var common = CommonOptions();
        var output = new Option<string?>("--out", "-o") { Description = "Model file to write (JSON)." };
        var method = new Option<string>("--method") { Description = "knn, logistic, blend or mf (docs/benchmarks.md, \"Router\", compares them).", DefaultValueFactory = _ => "logistic" };
        var command = new Command("train", "Train a router on the data (minus the held-out part) and write it to a file.") { output, method };
        Add(command, common);
        command.Action = new ModelCommand.OneLineErrors(async (parse, cancellationToken) =>
        {
            const string name = "marginal router train";
            var error = ModelCommand.Unmatched(name, parse)
                ?? Check(name, parse, common)
                ?? (string.IsNullOrWhiteSpace(parse.GetValue(output)) ? $"{name}: --out FILE is required" : null)
                ?? (!RouterTrainer.Methods.Contains(parse.GetValue(method)) ? $"{name}: --method: '{parse.GetValue(method)}' is not allowed (allowed: {string.Join(", ", RouterTrainer.Methods)})" : null);
            if (error is not null)
            {
                return await ModelCommand.BadInputAsync(error);
            }
            try
            {
                var (examples, vectors) = Load(parse, common, cancellationToken);
                var holdout = parse.GetValue(common.Holdout) ?? 0;
                var (train, _) = RouterTrainer.Split(examples, holdout, parse.GetValue(common.Seed), parse.GetValue(common.SplitBy)!);
                var trainExamples = train.Select(i => examples[i]).ToArray();
                var scorer = await Task.Run(() => RouterTrainer.Train(parse.GetValue(method)!, trainExamples, [.. train.Select(i => vectors[i])], parse.GetValue(common.Seed)), cancellationToken);
                var fit = RouterTrainer.Evaluate(scorer, trainExamples, [.. train.Select(i => vectors[i])]);
                var trainedOn = $"{parse.GetValue(common.Data)} ({trainExamples.Length} prompts; holdout {holdout.ToString(CultureInfo.InvariantCulture)} by {parse.GetValue(common.SplitBy)}, seed {parse.GetValue(common.Seed)})";
                // The score at CPT(50%) on the training part: a starting point that keeps about half the strong model's gain.
                RouterModelFile.Save(parse.GetValue(output)!, scorer, new RouterModelFile.Header(fit.CptPoint(0.5).Threshold, trainedOn));
                var k = scorer switch { KnnScorer knn => $", k {knn.K}", MfScorer mf => $", dimension {mf.Dimensions}", _ => "" };
                await Console.Out.WriteLineAsync($"marginal: wrote {parse.GetValue(output)} ({scorer.Kind}{k}, {trainExamples.Length} prompts, {new FileInfo(parse.GetValue(output)!).Length / 1024.0:F0} KiB)");
                return 0;
            }
            catch (RoutingDataException ex)
            {
                return await ModelCommand.BadInputAsync($"{name}: {ex.Message}");
            }
        });
        return command;
    }

    private static Command Eval()
    {
        var common = CommonOptions();
        var model = new Option<string?>("--model") { Description = "Evaluate this model file (from router train) instead of training." };
        var trainOn = new Option<string?>("--train") { Description = "Train on all of this data instead of a split of --data (e.g. MMLU, to evaluate on GSM8K)." };
        var method = new Option<string>("--method") { Description = "knn, logistic, blend, mf or all (compared side by side).", DefaultValueFactory = _ => "all" };
        var command = new Command("eval", "Print CPT(50%), CPT(80%), APGR and the accuracy-vs-strong-share curve of routers on held-out data.") { model, trainOn, method };
        Add(command, common);
        command.Action = new ModelCommand.OneLineErrors(async (parse, cancellationToken) =>
        {
            const string name = "marginal router eval";
            var methods = parse.GetValue(method) == "all" ? RouterTrainer.Methods : [parse.GetValue(method)!];
            var error = ModelCommand.Unmatched(name, parse)
                ?? Check(name, parse, common)
                ?? (!methods.All(RouterTrainer.Methods.Contains) ? $"{name}: --method: '{parse.GetValue(method)}' is not allowed (allowed: all, {string.Join(", ", RouterTrainer.Methods)})" : null)
                ?? (parse.GetValue(model) is not null && parse.GetValue(trainOn) is not null ? $"{name}: give --model or --train, not both" : null)
                ?? (parse.GetValue(model) is { } m && !File.Exists(m) ? $"{name}: --model: no file at {m}" : null);
            if (error is not null)
            {
                return await ModelCommand.BadInputAsync(error);
            }
            try
            {
                var seed = parse.GetValue(common.Seed);
                var (examples, vectors) = Load(parse, common, cancellationToken);
                var fromFile = parse.GetValue(model) is not null;
                var separate = parse.GetValue(trainOn) is not null;
                // Training in this command: hold out 20% unless told; a model file or separate training data: evaluate on all of --data.
                var holdout = parse.GetValue(common.Holdout) ?? (fromFile || separate ? 0 : 0.2);
                var (train, test) = holdout == 0
                    ? ([], Enumerable.Range(0, examples.Count).ToArray())
                    : RouterTrainer.Split(examples, holdout, seed, parse.GetValue(common.SplitBy)!);
                var testExamples = test.Select(i => examples[i]).ToArray();
                var testVectors = test.Select(i => vectors[i]).ToArray();
                IReadOnlyList<RoutingExample> trainExamples = [.. train.Select(i => examples[i])];
                IReadOnlyList<float[]> trainVectors = [.. train.Select(i => vectors[i])];
                if (separate)
                {
                    (trainExamples, trainVectors) = LoadEmbedded(parse.GetValue(trainOn)!, parse, common, cancellationToken);
                }
                var results = new List<(string Name, RouterEvaluation Evaluation)>();
                string? trainedOn = null;
                if (fromFile)
                {
                    var (scorer, header) = RouterModelFile.Load(parse.GetValue(model)!);
                    trainedOn = header.TrainedOn;
                    results.Add(($"{scorer.Kind} ({Path.GetFileName(parse.GetValue(model))})", RouterTrainer.Evaluate(scorer, testExamples, testVectors)));
                }
                else
                {
                    if (trainExamples.Count == 0)
                    {
                        return await ModelCommand.BadInputAsync($"{name}: nothing to train on: give --holdout above 0, --train PATH or --model FILE");
                    }
                    foreach (var each in methods)
                    {
                        var clock = Stopwatch.StartNew();
                        var scorer = await Task.Run(() => RouterTrainer.Train(each, trainExamples, trainVectors, seed), cancellationToken);
                        await Console.Error.WriteLineAsync($"marginal: trained {each} in {clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s");
                        var label = scorer switch
                        {
                            KnnScorer knn => $"knn (k {knn.K})",
                            BlendScorer blend => $"blend (knn {blend.KnnWeight.ToString("0.##", CultureInfo.InvariantCulture)}, k {blend.Knn.K})",
                            MfScorer mf => $"mf (dimension {mf.Dimensions})",
                            _ => each,
                        };
                        results.Add((label, RouterTrainer.Evaluate(scorer, testExamples, testVectors)));
                    }
                }
                results.Add(("prompt length only", RouterTrainer.EvaluateLength(testExamples)));
                results.Add(("random (seeded)", RouterTrainer.EvaluateRandom(testExamples, seed)));
                await PrintAsync(parse, common, holdout, trainedOn ?? $"{trainExamples.Count} prompts", testExamples, results);
                return 0;
            }
            catch (RoutingDataException ex)
            {
                return await ModelCommand.BadInputAsync($"{name}: {ex.Message}");
            }
        });
        return command;
    }

    /// <summary>
    /// <c>marginal router calibrate --model FILE --data D --strong-share S</c>: the threshold that sends share S of D's
    /// prompts to the strong model, with the accuracy it gives there. D should be data the router was not trained on
    /// (the file's <c>trained_on</c> is printed beside it): a threshold read off the training data is optimistic.
    /// </summary>
    private static Command Calibrate()
    {
        var common = CommonOptions();
        var model = new Option<string?>("--model") { Description = "The router file (from router train)." };
        var share = new Option<double?>("--strong-share") { Description = "Target share of prompts sent to the strong model, from 0.01 to 0.99 (e.g. 0.5)." };
        var command = new Command("calibrate", "Print the threshold that sends a target share of the data's prompts to the strong model.") { model, share };
        Add(command, common);
        command.Action = new ModelCommand.OneLineErrors(async (parse, cancellationToken) =>
        {
            const string name = "marginal router calibrate";
            var error = ModelCommand.Unmatched(name, parse)
                ?? Check(name, parse, common)
                ?? (parse.GetValue(model) is not { } m ? $"{name}: --model FILE is required (a router file from router train)" : !File.Exists(m) ? $"{name}: --model: no file at {m}" : null)
                ?? (parse.GetValue(share) is not { } s || !(s is >= 0.01 and <= 0.99) ? $"{name}: --strong-share: must be from 0.01 to 0.99" : null);
            if (error is not null)
            {
                return await ModelCommand.BadInputAsync(error);
            }
            try
            {
                var (scorer, header) = RouterModelFile.Load(parse.GetValue(model)!);
                var (examples, vectors) = Load(parse, common, cancellationToken);
                var evaluation = RouterTrainer.Evaluate(scorer, [.. examples], [.. vectors]);
                var target = parse.GetValue(share)!.Value;
                var point = RouterMetrics.SharePoint(evaluation, target);
                var gap = evaluation.StrongAccuracy - evaluation.WeakAccuracy;
                var pgr = gap == 0 ? "n/a" : ((point.Accuracy - evaluation.WeakAccuracy) / gap).ToString("F3", CultureInfo.InvariantCulture);
                var output = Console.Out;
                await output.WriteLineAsync($"threshold {point.Threshold.ToString("F4", CultureInfo.InvariantCulture)}: strong share {Percent(point.StrongShare)} (target {Percent(target)}) on {parse.GetValue(common.Data)} ({examples.Count} prompts)");
                await output.WriteLineAsync($"accuracy {Percent(point.Accuracy)} (weak alone {Percent(evaluation.WeakAccuracy)}, strong alone {Percent(evaluation.StrongAccuracy)}; PGR {pgr}; APGR over all thresholds {evaluation.Apgr.ToString("F3", CultureInfo.InvariantCulture)})");
                await output.WriteLineAsync($"router trained on {header.TrainedOn}; route to strong when score >= threshold (routes.R.learned.threshold)");
                return 0;
            }
            catch (RoutingDataException ex)
            {
                return await ModelCommand.BadInputAsync($"{name}: {ex.Message}");
            }
        });
        return command;
    }

    private static string? Check(string name, ParseResult parse, Common common) =>
        string.IsNullOrWhiteSpace(parse.GetValue(common.Data)) ? $"{name}: --data PATH is required (a RouteLLM CSV file or folder)"
        : parse.GetValue(common.Holdout) is { } h && !(h is >= 0 and <= 0.9) ? $"{name}: --holdout: must be from 0 to 0.9, got {h.ToString(CultureInfo.InvariantCulture)}"
        : !RouterTrainer.SplitKinds.Contains(parse.GetValue(common.SplitBy)) ? $"{name}: --split: '{parse.GetValue(common.SplitBy)}' is not allowed (allowed: {string.Join(", ", RouterTrainer.SplitKinds)})"
        : null;

    private static (IReadOnlyList<RoutingExample> Examples, IReadOnlyList<float[]> Vectors) Load(ParseResult parse, Common common, CancellationToken cancellationToken) =>
        LoadEmbedded(parse.GetValue(common.Data)!, parse, common, cancellationToken);

    private static (IReadOnlyList<RoutingExample> Examples, IReadOnlyList<float[]> Vectors) LoadEmbedded(string path, ParseResult parse, Common common, CancellationToken cancellationToken)
    {
        var examples = RouteLlmData.Load(path, parse.GetValue(common.Weak)!, parse.GetValue(common.Strong)!);
        var last = -1;
        var vectors = EmbeddingCache.Embed([.. examples.Select(e => e.Prompt)], progress: (done, total) =>
        {
            var percent = done * 100 / total;
            if (percent / 10 != last / 10)
            {
                last = percent;
                Console.Error.WriteLine($"marginal: embedding {path}: {done}/{total}");
            }
        }, cancellationToken: cancellationToken);
        return (examples, vectors);
    }

    private static string Percent(double share, int decimals = 2) => (share * 100).ToString("F" + decimals, CultureInfo.InvariantCulture) + "%";

    private static async Task PrintAsync(ParseResult parse, Common common, double holdout, string trained, RoutingExample[] test, List<(string Name, RouterEvaluation Evaluation)> results)
    {
        var first = results[0].Evaluation;
        var split = holdout == 0 ? "all of it" : $"held-out {Percent(holdout, 0)} by {parse.GetValue(common.SplitBy)}, seed {parse.GetValue(common.Seed)}";
        var output = Console.Out;
        await output.WriteLineAsync($"evaluated on {parse.GetValue(common.Data)} ({split}): {test.Length} prompts, {test.Select(e => e.Domain).Distinct(StringComparer.Ordinal).Count()} domains; trained on {trained}");
        await output.WriteLineAsync($"weak {parse.GetValue(common.Weak)} accuracy {Percent(first.WeakAccuracy)}; strong {parse.GetValue(common.Strong)} accuracy {Percent(first.StrongAccuracy)}");
        await output.WriteLineAsync();
        await output.WriteLineAsync($"{"router",-30} {"APGR",7} {"CPT(50%)",9} {"CPT(80%)",9}");
        foreach (var (label, evaluation) in results)
        {
            await output.WriteLineAsync($"{label,-30} {evaluation.Apgr,7:F3} {Percent(evaluation.Cpt50),9} {Percent(evaluation.Cpt80),9}");
        }
        foreach (var (label, evaluation) in results.Take(results.Count - 2))
        {
            await output.WriteLineAsync();
            await output.WriteLineAsync($"{label}: accuracy vs strong share (route to strong when score >= threshold)");
            await output.WriteLineAsync($"{"strong share",12} {"accuracy",9} {"threshold",10}");
            foreach (var point in RouterMetrics.Sample(evaluation))
            {
                var threshold = double.IsPositiveInfinity(point.Threshold) ? "none" : point.Threshold.ToString("F4", CultureInfo.InvariantCulture);
                await output.WriteLineAsync($"{Percent(point.StrongShare, 1),12} {Percent(point.Accuracy),9} {threshold,10}");
            }
            foreach (var x in new[] { 0.5, 0.8 })
            {
                var at = evaluation.CptPoint(x);
                await output.WriteLineAsync($"CPT({Percent(x, 0)}) = {Percent(at.StrongShare)} at threshold {at.Threshold.ToString("F4", CultureInfo.InvariantCulture)}");
            }
        }
    }
}
