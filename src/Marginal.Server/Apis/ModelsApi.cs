using System.Text.Json;
using Marginal.Gateway.Model;
using Marginal.Gateway.Routing.Aliases;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Server.Hosting;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Marginal.Server.Apis;

/// <summary>
/// <c>GET /v1/models</c> and <c>GET /v1/models/{id}</c>: the configured models the caller's key may use, in OpenAI's
/// shape. A model outside the key's list is absent from the list and 404 by id, as a model that does not exist.
/// </summary>
public static class ModelsApi
{
    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        // Handlers return a plain Task: a Task<T> would be taken for a result to serialize after the body is written.
        app.MapGet("/v1/models", async (HttpContext http, GatewayModelSource models) =>
        {
            http.Response.ContentType = "application/json";
            await using var json = new Utf8JsonWriter(http.Response.BodyWriter);
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            var key = KeyAuthentication.KeyOf(http);
            foreach (var route in models.Current.Models.Values.OrderBy(m => m.Name, StringComparer.Ordinal))
            {
                if (key is null || key.Allows(route.Name))
                {
                    WriteModel(json, route);
                }
            }
            foreach (var alias in models.Current.Routes.Values.OrderBy(r => r.Name, StringComparer.Ordinal))
            {
                if (key is null || key.Allows(alias.Name))
                {
                    WriteAlias(json, alias);
                }
            }
            json.WriteEndArray();
            json.WriteEndObject();
            await json.FlushAsync();
        });
        app.MapGet("/v1/models/{id}", async (HttpContext http, string id, GatewayModelSource models) =>
        {
            if (KeyAuthentication.KeyOf(http) is { } key && !key.Allows(id))
            {
                await WriteNotFoundAsync(http, id);
                return;
            }
            if (models.Current.Routes.TryGetValue(id, out var alias))
            {
                http.Response.ContentType = "application/json";
                await using var aliasJson = new Utf8JsonWriter(http.Response.BodyWriter);
                WriteAlias(aliasJson, alias);
                await aliasJson.FlushAsync();
                return;
            }
            if (!models.Current.Models.TryGetValue(id, out var route))
            {
                await WriteNotFoundAsync(http, id);
                return;
            }
            http.Response.ContentType = "application/json";
            await using var json = new Utf8JsonWriter(http.Response.BodyWriter);
            WriteModel(json, route);
            await json.FlushAsync();
        });
        return app;
    }

    private static Task WriteNotFoundAsync(HttpContext http, string id) =>
        OpenAIErrors.WriteAsync(http, StatusCodes.Status404NotFound, $"The model '{ClientBounds.Shown(id)}' does not exist.",
            "invalid_request_error", "model_not_found", "model");

    /// <summary>A route alias: type <c>route</c>, owned by the gateway, with the models it chooses between.</summary>
    private static void WriteAlias(Utf8JsonWriter json, RouteAlias alias)
    {
        json.WriteStartObject();
        json.WriteString("id", alias.Name);
        json.WriteString("object", "model");
        json.WriteNumber("created", 0);
        json.WriteString("owned_by", "marginal");
        json.WriteString("type", "route");
        json.WriteString("strong", alias.Strong);
        if (alias.Weak is { } weak)
        {
            json.WriteString("weak", weak);
        }
        json.WriteEndObject();
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
