using System.Globalization;
using Marginal.Core.Errors;

namespace Marginal.Gateway.Wire.OpenAI;

/// <summary>
/// The longest client-supplied strings the gateway keeps: every one of them reaches the ledger, the logs, a header or
/// an error message, so an unbounded one would grow a ledger row, a report or a log line by whatever the client sent.
/// OpenAI's own limits where it has them (metadata: 16 pairs, keys up to 64 characters, values up to 512); the rest
/// are generous for any real name. Past a bound the request is refused with 400 naming the parameter, in OpenAI's
/// wording, before anything is recorded. docs/operations.md, "Security", lists them.
/// </summary>
public static class ClientBounds
{
    /// <summary><c>model</c> (chat, embeddings): real model names and route aliases are far shorter.</summary>
    public const int Model = 256;

    /// <summary><c>user</c>: the end user's id.</summary>
    public const int User = 256;

    /// <summary><c>metadata</c>: at most this many pairs (OpenAI's limit).</summary>
    public const int MetadataPairs = 16;

    /// <summary><c>metadata</c> keys (OpenAI's limit).</summary>
    public const int MetadataKey = 64;

    /// <summary><c>metadata</c> values (OpenAI's limit).</summary>
    public const int MetadataValue = 512;

    /// <summary><c>x-marginal-tags</c>: at most this many comma-separated tags.</summary>
    public const int Tags = 16;

    /// <summary>One tag of <c>x-marginal-tags</c>.</summary>
    public const int Tag = 64;

    /// <summary><c>Idempotency-Key</c> (the ledger id is the tenant and this key).</summary>
    public const int IdempotencyKey = 255;

    /// <summary><c>request_id</c> of <c>POST /v1/feedback</c>: the longest id the gateway hands out (a tenant and an idempotency key) fits.</summary>
    public const int RequestId = 512;

    /// <summary><c>logit_bias</c>: at most this many tokens (a bound of this gateway; each entry is kept with the request).</summary>
    public const int LogitBiasEntries = 1024;

    /// <summary>The most of a client's value an error message echoes back.</summary>
    public const int Echoed = 64;

    /// <summary><paramref name="value"/> as an error message may echo it: at most <see cref="Echoed"/> characters.</summary>
    public static string Shown(string value) => value.Length <= Echoed ? value : value[..Echoed] + "…";

    /// <summary>Refuses <paramref name="value"/> when it is longer than <paramref name="max"/> characters.</summary>
    public static void Check(string? value, int max, string param)
    {
        if (value is not null && value.Length > max)
        {
            throw TooLong(param, max, value.Length);
        }
    }

    public static GatewayException TooLong(string param, int max, int length) => GatewayException.InvalidRequest(
        string.Create(CultureInfo.InvariantCulture,
            $"Invalid '{param}': string too long. Expected a string with maximum length {max}, but got a string with length {length} instead."),
        param, "string_above_max_length");

    /// <summary>Refuses metadata with too many pairs, or a key or value past its bound.</summary>
    public static void CheckMetadata(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is null)
        {
            return;
        }
        if (metadata.Count > MetadataPairs)
        {
            throw GatewayException.InvalidRequest(string.Create(CultureInfo.InvariantCulture,
                $"Invalid 'metadata': too many properties. Expected an object with at most {MetadataPairs} properties, but got an object with {metadata.Count} properties instead."),
                "metadata", "object_above_max_properties");
        }
        foreach (var (key, value) in metadata)
        {
            if (key.Length > MetadataKey)
            {
                throw GatewayException.InvalidRequest(string.Create(CultureInfo.InvariantCulture,
                    $"Invalid 'metadata': a key is too long. Expected keys with maximum length {MetadataKey}, but got a key with length {key.Length} instead."),
                    "metadata", "string_above_max_length");
            }
            // The key is at most 64 characters here, so naming it keeps the message short.
            Check(value, MetadataValue, $"metadata.{key}");
        }
    }

    /// <summary>The tags of an <c>x-marginal-tags</c> header, refused past <see cref="Tags"/> tags or a tag past <see cref="Tag"/> characters.</summary>
    public static string[] ParseTags(string header)
    {
        var tags = header.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (tags.Length > Tags)
        {
            throw GatewayException.InvalidRequest(string.Create(CultureInfo.InvariantCulture,
                $"Invalid 'x-marginal-tags': too many tags. Expected at most {Tags}, but got {tags.Length} instead."), "x-marginal-tags", "array_above_max_length");
        }
        foreach (var tag in tags)
        {
            Check(tag, Tag, "x-marginal-tags");
        }
        return tags;
    }
}
