using System.Text.Json.Serialization;
using Marginal.Economics.UnitEconomics;

namespace Marginal.Economics.Reports.Formats;

/// <summary>The economics report as JSON: snake_case names, money as JSON numbers (exact decimals), null kept as null.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(EconomicsReport))]
public sealed partial class EconomicsJson : JsonSerializerContext;
