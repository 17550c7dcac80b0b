using System.CommandLine;
using System.CommandLine.Invocation;
using Marginal.Local;
using Marginal.Local.TestModels;

namespace Marginal.Cli.Commands;

/// <summary>
/// <c>marginal model make-test</c> and <c>marginal model quantize</c>: the GGUF files the local backend serves.
/// Arguments are checked here rather than by the parser so every mistake is one line and exit code 2.
/// </summary>
internal static class ModelCommand
{
    private static readonly string[] Sizes = ["tiny", "small", "medium"];

    public static Command Create() => new("model", "Make a test GGUF model or quantize one.")
    {
        MakeTest(),
        Quantize(),
    };

    private static Command MakeTest()
    {
        var output = new Option<string?>("--out", "-o") { Description = "File to write (GGUF)." };
        var size = new Option<string>("--size") { Description = "tiny (6.6M parameters), small (29M) or medium (162M, 310 MiB).", DefaultValueFactory = _ => "tiny" };
        var seed = new Option<int>("--seed") { Description = "Seed of the random weights.", DefaultValueFactory = _ => 42 };
        var command = new Command("make-test", "Write a Llama-architecture GGUF model with random weights and GPT-2's vocabulary (its output is gibberish).")
        {
            output, size, seed,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.Action = new OneLineErrors(async (parse, cancellationToken) =>
        {
            const string name = "marginal model make-test";
            if (Unmatched(name, parse) is { } parseError)
            {
                return await BadInputAsync(parseError);
            }
            var path = parse.GetValue(output);
            var shape = TestModelShape.Named(parse.GetValue(size) ?? "");
            var error = (string.IsNullOrWhiteSpace(path) ? $"{name}: --out FILE is required" : null)
                ?? (shape is null ? $"{name}: --size: '{parse.GetValue(size)}' is not allowed (allowed: {string.Join(", ", Sizes)})" : null);
            if (error is not null)
            {
                return await BadInputAsync(error);
            }
            try
            {
                await Task.Run(() => TestModelWriter.Write(path!, shape!, parse.GetValue(seed)), cancellationToken);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"{name}: cannot write {path}: {ex.Message}");
                return 1;
            }
            await Console.Out.WriteLineAsync($"marginal: wrote {path} ({new FileInfo(path!).Length / 1024 / 1024.0:F1} MiB, {parse.GetValue(size)})");
            return 0;
        });
        return command;
    }

    private static Command Quantize()
    {
        var input = new Option<string?>("--in", "-i") { Description = "GGUF model to read (F16 or F32)." };
        var output = new Option<string?>("--out", "-o") { Description = "File to write." };
        var type = new Option<string?>("--type", "-t") { Description = $"Quantization: {string.Join(", ", ModelQuantizer.Types)}." };
        var command = new Command("quantize", "Quantize a GGUF model with llama.cpp, output tensor included.") { input, output, type };
        command.TreatUnmatchedTokensAsErrors = false;
        command.Action = new OneLineErrors(async (parse, cancellationToken) =>
        {
            const string name = "marginal model quantize";
            if (Unmatched(name, parse) is { } parseError)
            {
                return await BadInputAsync(parseError);
            }
            var from = parse.GetValue(input);
            var to = parse.GetValue(output);
            var typeName = parse.GetValue(type);
            var ftype = default(LLama.Native.LLamaFtype);
            var error = (string.IsNullOrWhiteSpace(from) ? $"{name}: --in FILE is required" : null)
                ?? (string.IsNullOrWhiteSpace(to) ? $"{name}: --out FILE is required" : null)
                ?? (!File.Exists(from) ? $"{name}: --in: no file at {from}" : null)
                ?? (!ModelQuantizer.TryParseType(typeName ?? "", out ftype) ? $"{name}: --type: '{typeName}' is not allowed (allowed: {string.Join(", ", ModelQuantizer.Types)})" : null);
            if (error is not null)
            {
                return await BadInputAsync(error);
            }
            try
            {
                await Task.Run(() => ModelQuantizer.Quantize(from!, to!, ftype), cancellationToken);
            }
            catch (InvalidOperationException ex)
            {
                await Console.Error.WriteLineAsync($"{name}: {ex.Message}");
                return 1;
            }
            await Console.Out.WriteLineAsync($"marginal: wrote {to} ({typeName}, {new FileInfo(from!).Length / 1024 / 1024.0:F1} MiB -> {new FileInfo(to!).Length / 1024 / 1024.0:F1} MiB)");
            return 0;
        });
        return command;
    }

    /// <summary>Runs the command even when parsing failed, so a parse error too is reported as one line with exit code 2.</summary>
    internal sealed class OneLineErrors(Func<ParseResult, CancellationToken, Task<int>> action) : AsynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override Task<int> InvokeAsync(ParseResult parseResult, CancellationToken cancellationToken = default) => action(parseResult, cancellationToken);
    }

    internal static string? Unmatched(string name, ParseResult parse) =>
        parse.Errors.Count > 0 ? $"{name}: {parse.Errors[0].Message}"
        : parse.UnmatchedTokens.Count > 0 ? $"{name}: unexpected argument '{parse.UnmatchedTokens[0]}'"
        : null;

    internal static async Task<int> BadInputAsync(string message)
    {
        await Console.Error.WriteLineAsync(message);
        return MarginalCommand.BadInput;
    }
}
