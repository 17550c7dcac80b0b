using System.Reflection;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Marginal.Gateway.Configuration;

/// <summary>
/// Reads the gateway's YAML files (marginal.yaml, price books) into their config types. Keys are snake_case.
/// Every failure is a <see cref="ConfigException"/> of one line: <c>file:line:column: what is wrong</c>, and for an
/// unknown key, the keys allowed where it stood.
/// </summary>
internal static class YamlFiles
{
    private static readonly IDeserializer Deserializer = new DeserializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .Build();

    /// <summary>The file's text, or a <see cref="ConfigException"/> naming it.</summary>
    public static string ReadAllText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{path}: cannot read the file ({ex.Message})", ex);
        }
    }

    /// <summary>
    /// Deserializes <paramref name="yaml"/>; an empty document gives a new <typeparamref name="T"/>.
    /// <paramref name="sections"/> names each config type an unknown key may stand in, as messages should call it
    /// (e.g. "a provider"); a null name leaves the place out of the message.
    /// </summary>
    public static T Deserialize<T>(string yaml, string fileName, IReadOnlyList<(string? Name, Type Type)> sections)
        where T : class, new()
    {
        try
        {
            return Deserializer.Deserialize<T?>(yaml) ?? new T();
        }
        catch (YamlException ex)
        {
            throw new ConfigException($"{fileName}:{ex.Start.Line}:{ex.Start.Column}: {Describe(ex, sections)}", ex);
        }
    }

    private static string Describe(YamlException ex, IReadOnlyList<(string? Name, Type Type)> sections)
    {
        // YamlDotNet says "Property 'x' not found on type 'Marginal...ProviderConfig'."; name the allowed keys instead.
        const string NotFound = "Property '";
        if (ex.Message.StartsWith(NotFound, StringComparison.Ordinal))
        {
            var end = ex.Message.IndexOf('\'', NotFound.Length);
            var key = ex.Message[NotFound.Length..end];
            foreach (var (name, type) in sections)
            {
                if (ex.Message.Contains(type.FullName!, StringComparison.Ordinal))
                {
                    var allowed = string.Join(", ", AllowedKeys(type));
                    return name is null ? $"unknown key '{key}' (allowed: {allowed})" : $"unknown key '{key}' in {name} (allowed: {allowed})";
                }
            }
            return $"unknown key '{key}'";
        }
        var inner = ex.InnerException is { } i ? i.Message : ex.Message;
        return $"invalid value: {inner.TrimEnd('.')}";
    }

    private static IEnumerable<string> AllowedKeys(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => p.GetCustomAttribute<YamlMemberAttribute>()?.Alias ?? UnderscoredNamingConvention.Instance.Apply(p.Name));
}
