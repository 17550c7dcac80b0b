using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Marginal.Gateway.Wire;

/// <summary>A function call's arguments as the compact JSON text the client dialects carry (<c>{"city":"Paris"}</c>).</summary>
public static class ToolArguments
{
    // M.E.AI's default options indent; a wire field is one line.
    private static readonly JsonSerializerOptions Compact = new(AIJsonUtilities.DefaultOptions) { WriteIndented = false };

    public static string Json(FunctionCallContent call) =>
        call.Arguments is null ? "{}" : JsonSerializer.Serialize(call.Arguments, Compact.GetTypeInfo(typeof(IDictionary<string, object?>)));
}
