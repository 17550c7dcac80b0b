using Microsoft.AspNetCore.Http;

namespace Marginal.Testing;

public sealed partial class FakeUpstream
{
    // Anthropic's Messages API (JSON and SSE events): not written yet.
    private Task AnthropicMessagesAsync(HttpContext http)
    {
        http.Response.StatusCode = StatusCodes.Status501NotImplemented;
        return Task.CompletedTask;
    }
}
