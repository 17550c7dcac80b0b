using System.Text.Json;
using Marginal.Gateway.Pipeline;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Marginal.Server.Apis;

/// <summary><c>GET /v1/models</c> and <c>GET /v1/models/{id}</c>: the configured models, in OpenAI's shape.</summary>
public static class ModelsApi
{
    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/models", (HttpContext http, GatewayModelSource models) =>
        {
            http.Response.ContentType = "application/json";
            using var json = new Utf8JsonWriter(http.Response.BodyWriter);
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            foreach (var route in models.Current.Models.Values.OrderBy(m => m.Name, StringComparer.Ordinal))
            {
                WriteModel(json, route);
            }
            json.WriteEndArray();
            json.WriteEndObject();
            json.Flush();
            return http.Response.BodyWriter.FlushAsync().AsTask();
        });
        app.MapGet("/v1/models/{id}", (HttpContext http, string id, GatewayModelSource models) =>
        {
            if (!models.Current.Models.TryGetValue(id, out var route))
            {
                return OpenAIErrors.WriteAsync(http, StatusCodes.Status404NotFound, $"The model '{id}' does not exist.", "invalid_request_error", "model_not_found", "model");
            }
            http.Response.ContentType = "application/json";
            using var json = new Utf8JsonWriter(http.Response.BodyWriter);
            WriteModel(json, route);
            json.Flush();
            return http.Response.BodyWriter.FlushAsync().AsTask();
        });
        return app;
    }

    private static void WriteModel(Utf8JsonWriter json, ModelRoute route)
    {
        json.WriteStartObject();
        json.WriteString("id", route.Name);
        json.WriteString("object", "model");
        json.WriteNumber("created", 0);
        json.WriteString("owned_by", route.Primary.Provider.Name);
        json.WriteString("type", route.Type);
        json.WriteEndObject();
    }
}
