using System.Buffers.Binary;
using System.Text.Json;
using Marginal.Gateway.Embeddings;

namespace Marginal.Gateway.Routing.Learning;

/// <summary>
/// A trained router on disk: JSON, versioned. <c>{"format": "marginal-router", "version": 1, "kind": "logistic"|"knn",
/// "embedding": "all-MiniLM-L6-v2", "dimensions": 384, "suggested_threshold": t, "trained_on": "...", ...}</c> plus, for
/// every kind, <c>length</c> <c>{"weight", "mean", "scale"}</c> (<see cref="LengthTerm"/>); for
/// <c>logistic</c>, <c>weights</c> (384 numbers) and <c>bias</c>; for <c>knn</c>, <c>k</c>, <c>gains</c> and <c>vectors</c>
/// (the examples' embeddings as base64 of little-endian half floats, 768 bytes each).
/// A file that does not match is a <see cref="RoutingDataException"/> naming the file and the field.
/// </summary>
public static class RouterModelFile
{
    public const string Format = "marginal-router";
    public const int Version = 1;

    /// <summary>What a model file holds besides its scorer.</summary>
    public sealed record Header(double SuggestedThreshold, string TrainedOn);

    public static void Save(string path, PromptScorer scorer, Header header)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream);
        json.WriteStartObject();
        json.WriteString("format", Format);
        json.WriteNumber("version", Version);
        json.WriteString("kind", scorer.Kind);
        json.WriteString("embedding", MiniLmEmbeddingGenerator.ModelId);
        json.WriteNumber("dimensions", MiniLmEmbeddingGenerator.Dimensions);
        json.WriteNumber("suggested_threshold", header.SuggestedThreshold);
        json.WriteString("trained_on", header.TrainedOn);
        json.WriteStartObject("length");
        json.WriteNumber("weight", scorer.Length.Weight);
        json.WriteNumber("mean", scorer.Length.Mean);
        json.WriteNumber("scale", scorer.Length.Scale);
        json.WriteEndObject();
        switch (scorer)
        {
            case LogisticScorer logistic:
                json.WriteNumber("bias", logistic.Bias);
                json.WriteStartArray("weights");
                foreach (var w in logistic.Weights)
                {
                    json.WriteNumberValue(w);
                }
                json.WriteEndArray();
                break;
            case KnnScorer knn:
                json.WriteNumber("k", knn.K);
                json.WriteStartArray("gains");
                foreach (var g in knn.Gains)
                {
                    json.WriteNumberValue(g);
                }
                json.WriteEndArray();
                var bytes = new byte[knn.Vectors.Count * MiniLmEmbeddingGenerator.Dimensions * 2];
                for (var i = 0; i < knn.Vectors.Count; i++)
                {
                    for (var j = 0; j < MiniLmEmbeddingGenerator.Dimensions; j++)
                    {
                        BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan((i * MiniLmEmbeddingGenerator.Dimensions + j) * 2), (Half)knn.Vectors[i][j]);
                    }
                }
                json.WriteBase64String("vectors", bytes);
                break;
        }
        json.WriteEndObject();
    }

    public static (PromptScorer Scorer, Header Header) Load(string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new RoutingDataException($"{path}: not a readable router model file ({ex.Message.Split('\n')[0]})");
        }
        using (document)
        {
            var root = document.RootElement;
            string Text(string name) => root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
                ? v.GetString()!
                : throw new RoutingDataException($"{path}: '{name}' is missing or not a string");
            double Number(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number
                ? v.GetDouble()
                : throw new RoutingDataException($"{path}: '{name}' is missing or not a number");
            if (Text("format") != Format || Number("version") != Version)
            {
                throw new RoutingDataException($"{path}: format: expected {Format} version {Version}");
            }
            if (Text("embedding") != MiniLmEmbeddingGenerator.ModelId || Number("dimensions") != MiniLmEmbeddingGenerator.Dimensions)
            {
                throw new RoutingDataException($"{path}: embedding: expected {MiniLmEmbeddingGenerator.ModelId} with {MiniLmEmbeddingGenerator.Dimensions} dimensions");
            }
            var header = new Header(Number("suggested_threshold"), Text("trained_on"));
            var length = LengthTerm.None;
            if (root.TryGetProperty("length", out var l))
            {
                double Part(string name) => l.ValueKind == JsonValueKind.Object && l.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number
                    ? v.GetDouble()
                    : throw new RoutingDataException($"{path}: 'length.{name}' is missing or not a number");
                length = new LengthTerm(Part("weight"), Part("mean"), Part("scale"));
                if (length.Scale <= 0)
                {
                    throw new RoutingDataException($"{path}: 'length.scale' must be above 0");
                }
            }
            float[] Numbers(string name, int? length)
            {
                if (!root.TryGetProperty(name, out var array) || array.ValueKind != JsonValueKind.Array || (length is { } l && array.GetArrayLength() != l))
                {
                    throw new RoutingDataException($"{path}: '{name}' must be an array{(length is { } n ? $" of {n} numbers" : " of numbers")}");
                }
                return [.. array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number ? e.GetSingle() : throw new RoutingDataException($"{path}: '{name}' holds a non-number"))];
            }
            switch (Text("kind"))
            {
                case "logistic":
                    return (new LogisticScorer(Numbers("weights", MiniLmEmbeddingGenerator.Dimensions), (float)Number("bias")) { Length = length }, header);
                case "knn":
                    var gains = Numbers("gains", null);
                    var bytes = root.TryGetProperty("vectors", out var v) && v.ValueKind == JsonValueKind.String && v.TryGetBytesFromBase64(out var b) ? b : null;
                    if (bytes is null || bytes.Length != gains.Length * MiniLmEmbeddingGenerator.Dimensions * 2)
                    {
                        throw new RoutingDataException($"{path}: 'vectors' must be base64 of {gains.Length} × {MiniLmEmbeddingGenerator.Dimensions} half floats");
                    }
                    var vectors = new float[gains.Length][];
                    for (var i = 0; i < gains.Length; i++)
                    {
                        vectors[i] = new float[MiniLmEmbeddingGenerator.Dimensions];
                        for (var j = 0; j < MiniLmEmbeddingGenerator.Dimensions; j++)
                        {
                            vectors[i][j] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan((i * MiniLmEmbeddingGenerator.Dimensions + j) * 2));
                        }
                    }
                    var k = (int)Number("k");
                    return k < 1
                        ? throw new RoutingDataException($"{path}: 'k' must be at least 1")
                        : (new KnnScorer(vectors, gains, k) { Length = length }, header);
                default:
                    throw new RoutingDataException($"{path}: kind: '{Text("kind")}' is not allowed (allowed: logistic, knn)");
            }
        }
    }
}
