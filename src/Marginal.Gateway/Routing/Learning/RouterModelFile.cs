using System.Buffers.Binary;
using System.Text.Json;
using Marginal.Gateway.Embeddings;

namespace Marginal.Gateway.Routing.Learning;

/// <summary>
/// A trained router on disk: JSON, versioned. <c>{"format": "marginal-router", "version": 1, "embedding":
/// "all-MiniLM-L6-v2", "dimensions": 384, "suggested_threshold": t, "trained_on": "...", "kind": ..., ...}</c>. Every
/// kind has <c>length</c> <c>{"weight", "mean", "scale"}</c> (<see cref="LengthTerm"/>); <c>logistic</c> adds
/// <c>weights</c> (384 numbers) and <c>bias</c>; <c>knn</c> adds <c>k</c>, <c>gains</c> and <c>vectors</c> (the examples'
/// embeddings as base64 of little-endian half floats, 768 bytes each); <c>blend</c> adds <c>knn_weight</c>,
/// <c>knn_scale</c>, <c>logit_scale</c> and the two parts as objects <c>knn</c> and <c>logistic</c> of the same shape;
/// <c>mf</c> (<see cref="MfScorer"/>) adds <c>projection</c> (d arrays of 385 numbers: 384 for the embedding, then one for
/// the log length, standardised by <c>length</c>'s mean and scale and multiplied by its weight), <c>projection_bias</c>,
/// <c>strong</c>, <c>weak</c> (the two models' unit embeddings) and <c>classifier</c>, d numbers each.
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
        json.WriteString("embedding", MiniLmEmbeddingGenerator.ModelId);
        json.WriteNumber("dimensions", MiniLmEmbeddingGenerator.Dimensions);
        json.WriteNumber("suggested_threshold", header.SuggestedThreshold);
        json.WriteString("trained_on", header.TrainedOn);
        WriteScorer(json, scorer);
        json.WriteEndObject();
    }

    private static void WriteScorer(Utf8JsonWriter json, PromptScorer scorer)
    {
        json.WriteString("kind", scorer.Kind);
        json.WriteStartObject("length");
        json.WriteNumber("weight", scorer.Length.Weight);
        json.WriteNumber("mean", scorer.Length.Mean);
        json.WriteNumber("scale", scorer.Length.Scale);
        json.WriteEndObject();
        switch (scorer)
        {
            case LogisticScorer logistic:
                json.WriteNumber("bias", logistic.Bias);
                WriteNumbers(json, "weights", logistic.Weights);
                break;
            case KnnScorer knn:
                json.WriteNumber("k", knn.K);
                WriteNumbers(json, "gains", knn.Gains);
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
            case BlendScorer blend:
                json.WriteNumber("knn_weight", blend.KnnWeight);
                json.WriteNumber("knn_scale", blend.KnnScale);
                json.WriteNumber("logit_scale", blend.LogitScale);
                json.WriteStartObject("knn");
                WriteScorer(json, blend.Knn);
                json.WriteEndObject();
                json.WriteStartObject("logistic");
                WriteScorer(json, blend.Logistic);
                json.WriteEndObject();
                break;
            case MfScorer mf:
                json.WriteStartArray("projection");
                foreach (var row in mf.Projection)
                {
                    WriteNumbers(json, null, row);
                }
                json.WriteEndArray();
                WriteNumbers(json, "projection_bias", mf.Bias);
                WriteNumbers(json, "strong", mf.Strong);
                WriteNumbers(json, "weak", mf.Weak);
                WriteNumbers(json, "classifier", mf.Classifier);
                break;
        }
    }

    // An array of numbers, as a property (name given) or as an element of the enclosing array.
    private static void WriteNumbers(Utf8JsonWriter json, string? name, IEnumerable<float> numbers)
    {
        if (name is null)
        {
            json.WriteStartArray();
        }
        else
        {
            json.WriteStartArray(name);
        }
        foreach (var x in numbers)
        {
            json.WriteNumberValue(x);
        }
        json.WriteEndArray();
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
            var root = new Fields(path, "", document.RootElement);
            if (root.Text("format") != Format || root.Number("version") != Version)
            {
                throw new RoutingDataException($"{path}: format: expected {Format} version {Version}");
            }
            if (root.Text("embedding") != MiniLmEmbeddingGenerator.ModelId || root.Number("dimensions") != MiniLmEmbeddingGenerator.Dimensions)
            {
                throw new RoutingDataException($"{path}: embedding: expected {MiniLmEmbeddingGenerator.ModelId} with {MiniLmEmbeddingGenerator.Dimensions} dimensions");
            }
            return (ReadScorer(root), new Header(root.Number("suggested_threshold"), root.Text("trained_on")));
        }
    }

    private static PromptScorer ReadScorer(Fields at)
    {
        var lengthFields = at.Object("length");
        var length = new LengthTerm(lengthFields.Number("weight"), lengthFields.Number("mean"), lengthFields.Number("scale"));
        if (length.Scale <= 0)
        {
            throw at.Fault("length.scale", "must be above 0");
        }
        switch (at.Text("kind"))
        {
            case "logistic":
                return new LogisticScorer(at.Numbers("weights", MiniLmEmbeddingGenerator.Dimensions), (float)at.Number("bias")) { Length = length };
            case "knn":
                var gains = at.Numbers("gains", null);
                var bytes = at.Bytes("vectors", gains.Length * MiniLmEmbeddingGenerator.Dimensions * 2, $"base64 of {gains.Length} × {MiniLmEmbeddingGenerator.Dimensions} half floats");
                var vectors = new float[gains.Length][];
                for (var i = 0; i < gains.Length; i++)
                {
                    vectors[i] = new float[MiniLmEmbeddingGenerator.Dimensions];
                    for (var j = 0; j < MiniLmEmbeddingGenerator.Dimensions; j++)
                    {
                        vectors[i][j] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan((i * MiniLmEmbeddingGenerator.Dimensions + j) * 2));
                    }
                }
                var k = (int)at.Number("k");
                return k < 1 ? throw at.Fault("k", "must be at least 1") : new KnnScorer(vectors, gains, k) { Length = length };
            case "blend":
                var (knnScale, logitScale) = (at.Number("knn_scale"), at.Number("logit_scale"));
                return ReadScorer(at.Object("knn")) is KnnScorer knn && ReadScorer(at.Object("logistic")) is LogisticScorer logistic && knnScale > 0 && logitScale > 0
                    ? new BlendScorer(knn, logistic, at.Number("knn_weight"), knnScale, logitScale)
                    : throw at.Fault("knn", "a blend needs a knn and a logistic part and positive scales");
            case "mf":
                var classifier = at.Numbers("classifier", null);
                var d = classifier.Length;
                return d == 0
                    ? throw at.Fault("classifier", "must hold at least 1 number")
                    : new MfScorer(at.Rows("projection", d, MfScorer.EmbeddingDimensions + 1), at.Numbers("projection_bias", d), at.Numbers("strong", d), at.Numbers("weak", d), classifier) { Length = length };
            default:
                throw at.Fault("kind", $"'{at.Text("kind")}' is not allowed (allowed: logistic, knn, blend, mf)");
        }
    }

    /// <summary>Typed reads of one JSON object, each fault a one-line message naming the file and the field's path.</summary>
    private readonly record struct Fields(string File, string Prefix, JsonElement Element)
    {
        public RoutingDataException Fault(string name, string what) => new($"{File}: '{Prefix}{name}' {what}");

        private JsonElement? Get(string name) =>
            Element.ValueKind == JsonValueKind.Object && Element.TryGetProperty(name, out var v) ? v : null;

        public string Text(string name) => Get(name) is { ValueKind: JsonValueKind.String } v ? v.GetString()! : throw Fault(name, "is missing or not a string");

        public double Number(string name) => Get(name) is { ValueKind: JsonValueKind.Number } v ? v.GetDouble() : throw Fault(name, "is missing or not a number");

        public Fields Object(string name) => Get(name) is { ValueKind: JsonValueKind.Object } v ? new Fields(File, $"{Prefix}{name}.", v) : throw Fault(name, "is missing or not an object");

        public float[] Numbers(string name, int? length)
        {
            if (Get(name) is not { ValueKind: JsonValueKind.Array } array || (length is { } l && array.GetArrayLength() != l))
            {
                throw Fault(name, length is { } n ? $"must be an array of {n} numbers" : "must be an array of numbers");
            }
            return Floats(array) ?? throw Fault(name, "holds a non-number");
        }

        /// <summary>An array of <paramref name="rows"/> arrays of <paramref name="length"/> numbers each.</summary>
        public float[][] Rows(string name, int rows, int length)
        {
            var what = $"must be an array of {rows} arrays of {length} numbers";
            if (Get(name) is not { ValueKind: JsonValueKind.Array } array || array.GetArrayLength() != rows)
            {
                throw Fault(name, what);
            }
            var result = new float[rows][];
            var i = 0;
            foreach (var row in array.EnumerateArray())
            {
                result[i++] = row.ValueKind == JsonValueKind.Array && row.GetArrayLength() == length && Floats(row) is { } values ? values : throw Fault(name, what);
            }
            return result;
        }

        private static float[]? Floats(JsonElement array)
        {
            var result = new float[array.GetArrayLength()];
            var i = 0;
            foreach (var e in array.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Number)
                {
                    return null;
                }
                result[i++] = e.GetSingle();
            }
            return result;
        }

        public byte[] Bytes(string name, int length, string what) =>
            Get(name) is { ValueKind: JsonValueKind.String } v && v.TryGetBytesFromBase64(out var bytes) && bytes.Length == length
                ? bytes
                : throw Fault(name, $"must be {what}");
    }
}
