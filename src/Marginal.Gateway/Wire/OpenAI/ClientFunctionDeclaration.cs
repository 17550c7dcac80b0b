using System.Text.Json;
using Marginal.Gateway.Providers;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Wire.OpenAI;

/// <summary>
/// A tool as the client declared it: its schema exactly as sent and its <c>strict</c> flag (under
/// <see cref="OpenAIOnlyFields.Strict"/>), so an OpenAI-compatible upstream gets the same declaration.
/// </summary>
internal sealed class ClientFunctionDeclaration(string name, string? description, JsonElement schema, bool? strict) : AIFunctionDeclaration
{
    private readonly IReadOnlyDictionary<string, object?> _properties =
        strict is { } value ? new Dictionary<string, object?> { [OpenAIOnlyFields.Strict] = value } : new Dictionary<string, object?>();

    public override string Name => name;

    public override string Description => description ?? "";

    public override JsonElement JsonSchema => schema;

    public override IReadOnlyDictionary<string, object?> AdditionalProperties => _properties;
}
