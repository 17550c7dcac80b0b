using System.Globalization;
using System.Text.Json;
using Marginal.Core.Errors;
using Marginal.Gateway.Wire.Anthropic;
using Microsoft.AspNetCore.Http;

namespace Marginal.Server.Wire;

/// <summary>Errors on the Anthropic endpoints (<c>/v1/messages</c>): Anthropic's body, with the status the kind has everywhere.</summary>
public static class AnthropicErrors
{
    /// <summary>Writes <paramref name="error"/> with the status OpenAI's format would use for it, and Anthropic's body.</summary>
    public static async Task WriteAsync(HttpContext http, GatewayException error)
    {
        var response = http.Response;
        response.StatusCode = OpenAIErrors.StatusOf(error.Kind);
        if (error.RetryAfter is { } wait)
        {
            response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }
        response.ContentType = "application/json";
        using (var json = new Utf8JsonWriter(response.BodyWriter))
        {
            json.WriteStartObject();
            json.WriteString("type"u8, "error"u8);
            json.WriteStartObject("error"u8);
            json.WriteString("type"u8, AnthropicErrorJson.TypeOf(error.Kind));
            json.WriteString("message"u8, error.Message);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        await response.BodyWriter.FlushAsync();
    }
}
