using System.Runtime.InteropServices;
using System.Text.Json;
using Marginal.Core.Errors;
using Marginal.Core.Ledger;
using Marginal.Core.Requests;
using Marginal.Gateway.Idempotency;
using Marginal.Gateway.Model;
using Marginal.Gateway.Wire.OpenAI;
using Marginal.Server.Hosting;
using Marginal.Server.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Marginal.Server.Apis;

/// <summary>
/// <c>POST /v1/embeddings</c> for models of type <c>embedding</c>, through the embeddings pipeline
/// (<c>GatewayPipeline.BuildEmbeddings</c>: admission, metering, failover with chat's cool-downs). The whole request path
/// reads top to bottom in <c>HandleAsync</c>: read and check the request, check the key's models and the
/// Idempotency-Key, build its <see cref="GatewayContext"/>, call the pipeline, write the answer with the headers its
/// outcomes give.
/// </summary>
public static class EmbeddingsApi
{
    public static IEndpointRouteBuilder MapEmbeddingsApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/embeddings", HandleAsync);
        return app;
    }

    private static async Task HandleAsync(HttpContext http, GatewayModelSource models, IEmbeddingGenerator<string, Embedding<float>> pipeline, TimeProvider time)
    {
        GatewayContext? context = null;
        try
        {
            var request = await ReadAsync(http);
            var route = Validate(request, models.Current);
            var key = KeyAuthentication.KeyOf(http);
            ModelPermission.Check(key, route.Name);
            var tenant = key?.Tenant ?? "default";
            var id = RequestIds.Of(http, tenant, time);
            http.Response.Headers["x-marginal-request-id"] = id;
            // With an Idempotency-Key the ledger holds the key's body: another body is 422, the same one a repeat (no replay here).
            var hash = RequestIds.HasIdempotencyKey(http) ? BodyHash(request) : null;
            var repeat = hash is not null && await IdempotencyLedger.HeldAsync(http.RequestServices.GetService<LedgerWriter>()?.Store, id, hash, http.RequestAborted);
            context = new GatewayContext { RequestId = id, Tenant = tenant, KeyId = key?.Id ?? "none", RequestedModel = route.Name, RequestHash = hash, AnswerGone = repeat };
            var options = new EmbeddingGenerationOptions { ModelId = route.Name, Dimensions = request.Dimensions }.WithGatewayContext(context);

            var result = await pipeline.GenerateAsync(request.Input!, options, http.RequestAborted);

            var headers = http.Response.Headers;
            RateLimitHeaders.Write(http.Response, context.Admission);
            if (context.CostUsd is { } cost)
            {
                headers["x-marginal-cost-usd"] = cost.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            if (!context.Billed)
            {
                headers["x-marginal-duplicate"] = "true";
            }
            headers["x-marginal-model"] = context.ServedModel;
            headers["x-marginal-provider"] = context.Provider;
            http.Response.ContentType = "application/json";
            var upstreamId = context.ServedModel is { } served && models.Current.Models.TryGetValue(served, out var servedRoute) ? servedRoute.Primary.UpstreamId : route.Primary.UpstreamId;
            Write(http.Response, result, upstreamId, request.EncodingFormat == "base64");
            await http.Response.BodyWriter.FlushAsync(http.RequestAborted);
        }
        catch (GatewayException error) when (!http.Response.HasStarted)
        {
            RateLimitHeaders.Write(http.Response, context?.Admission);
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
