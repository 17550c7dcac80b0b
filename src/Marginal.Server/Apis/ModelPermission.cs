using Marginal.Core.Errors;
using Marginal.Core.Tenancy;

namespace Marginal.Server.Apis;

/// <summary>A virtual key's model list, checked the same way by every API that names a model.</summary>
internal static class ModelPermission
{
    /// <summary>Throws 403 <c>model_not_allowed</c> when <paramref name="key"/> may not use <paramref name="model"/>; no key (auth off) allows every model.</summary>
    public static void Check(VirtualKey? key, string model)
    {
        if (key is not null && !key.Allows(model))
        {
            throw new GatewayException(GatewayErrorKind.PermissionDenied, $"The API key {key.Id} may not use model '{model}' (allowed: {string.Join(", ", key.Models)}).", "model_not_allowed", "model");
        }
    }
}
