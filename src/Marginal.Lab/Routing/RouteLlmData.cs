using System.Text;
using System.Text.Json;
using Marginal.Gateway.Routing.Learning;

namespace Marginal.Lab.Routing;

/// <summary>
/// Reads correctness data in RouteLLM's evaluation format (lm-sys/RouteLLM, <c>routellm/evals/</c>): CSV files with a
/// <c>prompt</c> column and one True/False column per model. A path is one CSV file or a folder of them; the domain of a
/// prompt is its file name without a <c>mmlu_</c> prefix. Prompts listed as <c>eval_prompt</c> in a
/// <c>contaminated_prompts.jsonl</c> beside the files are left out, as the study did. Bad data is a
/// <see cref="RoutingDataException"/> naming the file and what is wrong.
/// </summary>
public static class RouteLlmData
{
    /// <summary>The study's weak model column.</summary>
    public const string DefaultWeak = "mistralai/Mixtral-8x7B-Instruct-v0.1";

    /// <summary>The study's strong model column.</summary>
    public const string DefaultStrong = "gpt-4-1106-preview";

    /// <summary>The examples under <paramref name="path"/>, files in name order, rows in file order; contaminated prompts left out.</summary>
    public static IReadOnlyList<RoutingExample> Load(string path, string weak = DefaultWeak, string strong = DefaultStrong)
    {
        string[] files;
        string folder;
        if (Directory.Exists(path))
        {
            files = [.. Directory.GetFiles(path, "*.csv").Order(StringComparer.Ordinal)];
            folder = path;
        }
        else if (File.Exists(path))
        {
            files = [path];
            folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        }
        else
        {
            throw new RoutingDataException($"{path}: no such file or folder (give a RouteLLM CSV file or a folder of them)");
        }
        if (files.Length == 0)
        {
            throw new RoutingDataException($"{path}: the folder holds no .csv files");
        }
        var contaminated = Contaminated(Path.Combine(folder, "contaminated_prompts.jsonl"));
        var examples = new List<RoutingExample>();
        foreach (var file in files)
        {
            var domain = Path.GetFileNameWithoutExtension(file);
            domain = domain.StartsWith("mmlu_", StringComparison.Ordinal) ? domain[5..] : domain;
            examples.AddRange(ReadFile(file, domain, weak, strong).Where(e => !contaminated.Contains(e.Prompt)));
        }
        return examples;
    }

    private static HashSet<string> Contaminated(string file)
    {
        var prompts = new HashSet<string>(StringComparer.Ordinal);
        if (!File.Exists(file))
        {
            return prompts;
        }
        var line = 0;
        foreach (var text in File.ReadLines(file))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }
            try
            {
                using var json = JsonDocument.Parse(text);
                if (json.RootElement.TryGetProperty("eval_prompt", out var prompt) && prompt.ValueKind == JsonValueKind.String)
                {
                    prompts.Add(prompt.GetString()!);
                }
            }
            catch (JsonException)
            {
                throw new RoutingDataException($"{file}: line {line} is not JSON (each line: {{\"eval_prompt\": \"...\"}})");
            }
        }
        return prompts;
    }

    private static IEnumerable<RoutingExample> ReadFile(string file, string domain, string weak, string strong)
    {
        using var reader = new StreamReader(file, Encoding.UTF8);
        var header = ReadRecord(reader) ?? throw new RoutingDataException($"{file}: is empty (needs a header: prompt,<weak model>,<strong model>)");
        int Column(string name) => Array.IndexOf(header, name) is var i and >= 0
            ? i
            : throw new RoutingDataException($"{file}: column '{name}' is missing (columns: {string.Join(", ", header)})");
        var (p, w, s) = (Column("prompt"), Column(weak), Column(strong));
        var row = 1;
        while (ReadRecord(reader) is { } fields)
        {
            row++;
            if (fields.Length <= Math.Max(p, Math.Max(w, s)))
            {
                throw new RoutingDataException($"{file}: record {row} has {fields.Length} fields, the header {header.Length}");
            }
            yield return new RoutingExample(fields[p], domain, Bool(fields[w], file, row, weak), Bool(fields[s], file, row, strong));
        }
    }

    private static bool Bool(string text, string file, int row, string column) => text.Trim() switch
    {
        "True" or "true" or "1" => true,
        "False" or "false" or "0" => false,
        _ => throw new RoutingDataException($"{file}: record {row}, column '{column}': '{text}' is not True or False"),
    };

    /// <summary>One RFC 4180 record: fields may be quoted, with doubled quotes and line breaks inside; null at the end.</summary>
    internal static string[]? ReadRecord(TextReader reader)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        var any = false;
        while (true)
        {
            var c = reader.Read();
            if (c < 0)
            {
                if (!any)
                {
                    return null;
                }
                fields.Add(field.ToString());
                return [.. fields];
            }
            any = true;
            if (quoted)
            {
                if (c == '"')
                {
                    if (reader.Peek() == '"')
                    {
                        reader.Read();
                        field.Append('"');
                    }
                    else
                    {
                        quoted = false;
                    }
                }
                else
                {
                    field.Append((char)c);
                }
                continue;
            }
            switch (c)
            {
                case '"':
                    quoted = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    break;
                case '\r':
                    break;
                case '\n':
                    fields.Add(field.ToString());
                    return [.. fields];
                default:
                    field.Append((char)c);
                    break;
            }
        }
    }
}
