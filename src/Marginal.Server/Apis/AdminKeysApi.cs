using System.Globalization;
using System.Text.Json;
using Marginal.Core.Tenancy;
using Marginal.Server.Cluster;
using Marginal.Server.Hosting;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Marginal.Server.Apis;

/// <summary>
/// <c>/admin/v1/keys</c>: create, list and revoke virtual keys, behind the admin key (<c>server.admin_key_env</c>), which
/// is separate from every client key. While the admin key is unset, every admin call is refused.
/// <list type="bullet">
/// <item><c>POST /admin/v1/keys</c> <c>{"tenant":"acme","expires":"2027-01-01T00:00:00Z","models":["gpt-4o-mini"]}</c> → 201 with the key text, shown once;
/// 400 for a tenant name outside <see cref="TenantNames.Rule"/>, an <c>expires</c> not in the future, or a <c>models</c>
/// value that is not an array of non-empty names (left out: every model).</item>
/// <item><c>GET /admin/v1/keys</c> → every key without its secret.</item>
/// <item><c>DELETE /admin/v1/keys/{id}</c> → 200 once revoked, 404 when unknown.</item>
/// </list>
/// </summary>
public static class AdminKeysApi
{
    internal static IEndpointRouteBuilder MapAdminKeysApi(this IEndpointRouteBuilder app, AdminAccess access)
    {
        var group = app.MapGroup("/admin/v1/keys").AddEndpointFilter(new AdminKeyFilter(access));
        group.MapPost("", CreateAsync);
        group.MapGet("", ListAsync);
        group.MapDelete("/{id}", RevokeAsync);
        return app;
    }

    private static async Task CreateAsync(HttpContext http, IKeyStore keys, TimeProvider time)
    {
        string? tenant = null;
        DateTimeOffset? expires = null;
        var models = new List<string>();
        var now = time.GetUtcNow();
        try
        {
            using var body = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted);
            var root = body.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (root.TryGetProperty("tenant", out var t) && t.ValueKind == JsonValueKind.String)
                {
                    tenant = t.GetString();
                }
                if (root.TryGetProperty("expires", out var e) && e.ValueKind != JsonValueKind.Null)
                {
                    expires = e.ValueKind == JsonValueKind.String && DateTimeOffset.TryParse(e.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
                        ? at
                        : throw new FormatException("expires");
                }
                if (root.TryGetProperty("models", out var m))
                {
                    // Fail closed: anything but a list of names (a string, true, 0, {}, null, [null], [""]) is refused,
                    // never read as "every model". Leaving the field out, or [], is every model.
                    models.AddRange(ModelList(m) ?? throw new ArgumentException("models"));
                }
            }
        }
        catch (Exception error) when (error is JsonException or FormatException or InvalidOperationException)
        {
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status400BadRequest,
                "The body must be JSON: {\"tenant\": string, \"expires\": ISO-8601 time or null, \"models\": [string]}.", "invalid_request_error", "invalid_body",
                error is FormatException ? "expires" : null);
            return;
        }
        catch (ArgumentException)
        {
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status400BadRequest,
                "'models' must be an array of non-empty model names; leave it out for every model.", "invalid_request_error", "invalid_value", "models");
            return;
        }
        if (string.IsNullOrWhiteSpace(tenant))
        {
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status400BadRequest, "'tenant' is required: the name of the tenant the key bills to.", "invalid_request_error", "missing_required_parameter", "tenant");
            return;
        }
        if (!TenantNames.IsValid(tenant))
        {
            // The name is not echoed: it may hold control or bidirectional characters, or be very long.
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status400BadRequest, $"'tenant' must be {TenantNames.Rule}.", "invalid_request_error", "invalid_value", "tenant");
            return;
        }
        if (expires <= now)
        {
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status400BadRequest, "'expires' must be in the future: a key created expired could never be used.", "invalid_request_error", "invalid_value", "expires");
            return;
        }
        var (key, text) = KeyIssuer.Issue(tenant, now, expires, models);
        await keys.AddKeyAsync(key, http.RequestAborted);
        http.Response.StatusCode = StatusCodes.Status201Created;
        await WriteJsonAsync(http, json =>
        {
            WriteKey(json, key);
            json.WriteString("key", text);
        });
    }

    /// <summary>The names in a <c>models</c> value, or null when it is not an array of non-empty strings.</summary>
    private static List<string>? ModelList(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        var names = new List<string>();
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(item.GetString()))
            {
                return null;
            }
            names.Add(item.GetString()!);
        }
        return names;
    }

    private static async Task ListAsync(HttpContext http, IKeyStore keys)
    {
        var all = await keys.ListKeysAsync(http.RequestAborted);
        http.Response.ContentType = "application/json";
        using var json = new Utf8JsonWriter(http.Response.BodyWriter);
        json.WriteStartObject();
        json.WriteString("object", "list");
        json.WriteStartArray("data");
        foreach (var key in all)
        {
            json.WriteStartObject();
            WriteKey(json, key);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
        await json.FlushAsync(http.RequestAborted);
    }

    private static async Task RevokeAsync(HttpContext http, string id, IKeyStore keys, TimeProvider time)
    {
        if (!await keys.RevokeKeyAsync(id, time.GetUtcNow(), http.RequestAborted))
        {
            await OpenAIErrors.WriteAsync(http, StatusCodes.Status404NotFound, $"No key with id '{id}'.", "invalid_request_error", "key_not_found", "id");
            return;
        }
        // Refused from the next request on, not after the cache's few seconds.
        http.RequestServices.GetService<KeyAuthentication>()?.Forget(id);
        if (http.RequestServices.GetService<ClusterChanges>() is { } cluster)
        {
            await cluster.KeyRevokedAsync(id);
        }
        var key = (await keys.FindKeyAsync(id, http.RequestAborted))!;
        await WriteJsonAsync(http, json => WriteKey(json, key));
    }

    private static void WriteKey(Utf8JsonWriter json, VirtualKey key)
    {
        json.WriteString("id", key.Id);
        json.WriteString("object", "marginal.key");
        json.WriteString("tenant", key.Tenant);
        json.WriteString("created", key.Created);
        WriteTime(json, "expires", key.Expires);
        WriteTime(json, "revoked", key.Revoked);
        json.WriteStartArray("models");
        foreach (var model in key.Models)
        {
            json.WriteStringValue(model);
        }
        json.WriteEndArray();
    }

    private static void WriteTime(Utf8JsonWriter json, string name, DateTimeOffset? value)
    {
        if (value is { } v)
        {
            json.WriteString(name, v);
        }
        else
        {
            json.WriteNull(name);
        }
    }

    private static async Task WriteJsonAsync(HttpContext http, Action<Utf8JsonWriter> write)
    {
        http.Response.ContentType = "application/json";
        using var json = new Utf8JsonWriter(http.Response.BodyWriter);
        json.WriteStartObject();
        write(json);
        json.WriteEndObject();
        await json.FlushAsync(http.RequestAborted);
    }

    /// <summary>
    /// Admits a call only with the admin key as bearer token (<see cref="AdminAccess"/>). A refusal, already written,
    /// returns an empty result: returning null would make the endpoint write that null after the response has started,
    /// which throws and logs a stack trace on every wrong key.
    /// </summary>
    private sealed class AdminKeyFilter(AdminAccess access) : IEndpointFilter
    {
        public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
            await access.AdmitBearerAsync(context.HttpContext, "admin API") ? await next(context) : Results.Empty;
    }
}
