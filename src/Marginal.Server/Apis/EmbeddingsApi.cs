using System.Runtime.InteropServices;
using System.Text.Json;
using Marginal.Core.Errors;
using Marginal.Core.Ledger;
using Marginal.Core.Requests;
using Marginal.Gateway.Billing;
using Marginal.Gateway.Idempotency;
using Marginal.Gateway.Metering;
using Marginal.Gateway.Model;
using Marginal.Gateway.Providers;
using Marginal.Server.Hosting;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Marginal.Server.Apis;

/// <summary><c>POST /v1/embeddings</c> for models of type <c>embedding</c>, with the same fallback rules as chat; priced and recorded like chat.</summary>
public static class EmbeddingsApi
{
    public static IEndpointRouteBuilder MapEmbeddingsApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/embeddings", HandleAsync);
        return app;
    }

    private static async Task HandleAsync(HttpContext http, GatewayModelSource models, TimeProvider time)
    {
        var started = time.GetTimestamp();
        var arrived = time.GetUtcNow();
        try
        {
            var request = await ReadAsync(http);
            var route = Validate(request, models.Current);
            var key = KeyAuthentication.KeyOf(http);
            if (key is not null && !key.Allows(route.Name))
            {
                throw new GatewayException(GatewayErrorKind.PermissionDenied, $"The API key {key.Id} may not use model '{route.Name}' (allowed: {string.Join(", ", key.Models)}).", "model_not_allowed", "model");
            }
            var tenant = key?.Tenant ?? "default";
            var id = RequestIds.Of(http, tenant, time);
            http.Response.Headers["x-marginal-request-id"] = id;
            // With an Idempotency-Key the ledger holds the key's body: another body is 422, the same one a repeat (no replay here).
            var hash = RequestIds.HasIdempotencyKey(http) ? BodyHash(request) : null;
            var repeat = hash is not null && await IdempotencyLedger.HeldAsync(http.RequestServices.GetService<LedgerWriter>()?.Store, id, hash, http.RequestAborted);
            // Budgets and rate limits hold for embeddings as for chat: the inputs are the prompt, nothing is generated.
            var admission = http.RequestServices.GetService<Admission>();
            var context = new GatewayContext { RequestId = id, Tenant = tenant, KeyId = key?.Id ?? "none" };
            var ticket = admission is null ? null : await admission.AdmitAsync(http.Response, context,
                [.. request.Input!.Select(text => new ChatMessage(ChatRole.User, text))], new ChatOptions { ModelId = route.Name, MaxOutputTokens = 0 }, http.RequestAborted);
            GeneratedEmbeddings<Embedding<float>> result;
            ModelDeployment model;
            decimal? cost;
            bool billed;
            try
            {
                (result, model) = await GenerateAsync(route, request, time, http.RequestAborted);
                var metering = new EmbeddingMetering(http.RequestServices.GetService<LedgerWriter>(), http.RequestServices.GetService<TenantAccounts>());
                long tokens;
                (cost, billed, tokens) = await metering.RecordAsync(
                    new EmbeddingMetering.Request(id, tenant, key?.Id ?? "none", route.Name, arrived, hash, repeat), model, result.Usage, request.Input!, time.GetElapsedTime(started).TotalMilliseconds);
                (context.CostUsd, context.Billed, context.Usage) = (cost, billed, new UsageDetails { InputTokenCount = tokens });
            }
            finally
            {
                // A failed request releases what it reserved (its cost reads as 0).
                if (ticket is not null)
                {
                    await admission!.SettleAsync(ticket, context);
                }
            }
            if (cost is { } c)
            {
                http.Response.Headers["x-marginal-cost-usd"] = c.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            if (!billed)
            {
                http.Response.Headers["x-marginal-duplicate"] = "true";
            }
            http.Response.Headers["x-marginal-model"] = model.Model;
            http.Response.Headers["x-marginal-provider"] = model.Provider.Name;
            http.Response.ContentType = "application/json";
            Write(http.Response, result, model.UpstreamId, request.EncodingFormat == "base64");
            await http.Response.BodyWriter.FlushAsync(http.RequestAborted);
        }
        catch (GatewayException error) when (!http.Response.HasStarted)
        {
            await OpenAIErrors.WriteAsync(http, error);
        }
        catch (BadHttpRequestException tooLarge) when (tooLarge.StatusCode == StatusCodes.Status413PayloadTooLarge && !http.Response.HasStarted)
        {
            await RequestLimits.WriteTooLargeAsync(http);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
        }
    }

    /// <summary>What an embeddings request asks (model, inputs, format, dimensions), hashed for the Idempotency-Key check.</summary>
    private static string BodyHash(EmbeddingRequest request)
    {
        var text = new System.Text.StringBuilder();
        text.Append(System.Globalization.CultureInfo.InvariantCulture, $"{request.Model}\n{request.EncodingFormat}\n{request.Dimensions}\n");
        foreach (var input in request.Input!)
        {
            // Length-prefixed, so no two input lists hash the same text.
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"{input.Length}:{input}");
        }
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text.ToString()))) + ":embeddings";
    }

    private static async Task<EmbeddingRequest> ReadAsync(HttpContext http)
    {
        try
        {
            return await JsonSerializer.DeserializeAsync(http.Request.Body, WireJsonContext.Default.EmbeddingRequest, http.RequestAborted)
                ?? throw GatewayException.InvalidRequest("The request body must be a JSON object.");
        }
        catch (JsonException ex)
        {
            throw ChatRequestReader.FromJsonException(ex);
        }
    }

    private static ModelRoute Validate(EmbeddingRequest request, GatewayModel model)
    {
        if (string.IsNullOrEmpty(request.Model))
        {
            throw GatewayException.InvalidRequest("You must provide a model parameter.", "model", "missing_required_parameter");
        }
        ClientBounds.Check(request.Model, ClientBounds.Model, "model");
        ClientBounds.Check(request.User, ClientBounds.User, "user");
        if (!model.Models.TryGetValue(request.Model, out var route) || route.Type != "embedding")
        {
            throw GatewayException.ModelNotFound($"The model '{request.Model}' does not exist or is not an embedding model on this gateway.");
        }
        if (request.Input is not { Count: > 0 } || request.Input.Exists(string.IsNullOrEmpty))
        {
            throw GatewayException.InvalidRequest("'input' must be a non-empty string or a non-empty array of non-empty strings.", "input", "invalid_value");
        }
        if (request.EncodingFormat is not (null or "float" or "base64"))
        {
            throw GatewayException.InvalidRequest($"Invalid value: '{request.EncodingFormat}'. Supported values are: 'float' and 'base64'.", "encoding_format", "invalid_value");
        }
        if (request.Dimensions is < 1)
        {
            throw GatewayException.InvalidRequest($"{request.Dimensions} is less than the minimum of 1 - 'dimensions'.", "dimensions", "invalid_value");
        }
        return route;
    }

    private static async Task<(GeneratedEmbeddings<Embedding<float>> Result, ModelDeployment Deployment)> GenerateAsync(ModelRoute route, EmbeddingRequest request, TimeProvider time, CancellationToken cancellationToken)
    {
        GatewayException? last = null;
        foreach (var deployment in route.Chain)
        {
            if (deployment.Provider.Embeddings is not { } factory)
            {
                continue;
            }
            try
            {
                using var generator = factory(deployment.UpstreamId);
                var options = new EmbeddingGenerationOptions { Dimensions = request.Dimensions, ModelId = deployment.UpstreamId };
                return (await generator.GenerateAsync(request.Input!, options, cancellationToken), deployment);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && !ProviderErrors.IsOwnFailure(ex))
            {
                last = ProviderErrors.Classify(ex, deployment.Provider.Name, time);
                if (!last.IsRetryableElsewhere)
                {
                    throw last;
                }
            }
        }
        throw last ?? new GatewayException(GatewayErrorKind.UpstreamUnavailable, $"No provider could serve model '{route.Name}'.", "no_provider_available");
    }

    private static void Write(HttpResponse response, GeneratedEmbeddings<Embedding<float>> result, string model, bool base64)
    {
        using var json = new Utf8JsonWriter(response.BodyWriter);
        json.WriteStartObject();
        json.WriteString("object"u8, "list"u8);
        json.WriteStartArray("data"u8);
        for (var i = 0; i < result.Count; i++)
        {
            json.WriteStartObject();
            json.WriteString("object"u8, "embedding"u8);
            json.WriteNumber("index"u8, i);
            var vector = result[i].Vector.Span;
            if (base64)
            {
                // OpenAI's base64 format: the float32 values, little-endian, base64-encoded.
                json.WriteBase64String("embedding"u8, MemoryMarshal.AsBytes(vector));
            }
            else
            {
                json.WriteStartArray("embedding"u8);
                foreach (var value in vector)
                {
                    json.WriteNumberValue(value);
                }
                json.WriteEndArray();
            }
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteString("model"u8, result.Count > 0 && result[0].ModelId is { } id ? id : model);
        var tokens = result.Usage?.InputTokenCount ?? 0;
        json.WriteStartObject("usage"u8);
        json.WriteNumber("prompt_tokens"u8, tokens);
        json.WriteNumber("total_tokens"u8, result.Usage?.TotalTokenCount ?? tokens);
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
