using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Marginal.Gateway.Configuration;

namespace Marginal.Server.Hosting;

/// <summary>
/// <c>server.tls</c>: loads the certificate Kestrel presents on <c>https://</c> addresses, and checks that the
/// addresses and the certificate agree, so a node never serves plain HTTP where HTTPS was meant (or the reverse).
/// </summary>
internal static class ServerCertificate
{
    public static X509Certificate2? Load(TlsConfig? tls, string urls)
    {
        var addresses = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var https = addresses.Where(u => u.StartsWith("https://", StringComparison.OrdinalIgnoreCase)).ToList();
        if (tls is null)
        {
            return https.Count == 0 ? null
                : throw new ConfigException($"server.tls: '{https[0]}' asks for HTTPS but no certificate is configured; set server.tls.certificate_file (and key_file for PEM)");
        }
        if (https.Count != addresses.Length)
        {
            throw new ConfigException($"server.urls: '{addresses.First(u => !https.Contains(u))}' is plain HTTP while server.tls is set; use https:// addresses");
        }
        var password = tls.PasswordEnv is { } env ? Environment.GetEnvironmentVariable(env) : null;
        if (tls.PasswordEnv is not null && password is null)
        {
            throw new ConfigException($"server.tls.password_env: the environment variable {tls.PasswordEnv} is not set");
        }
        try
        {
            var path = tls.CertificateFile!;
            var certificate = path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase)
                ? X509CertificateLoader.LoadPkcs12FromFile(path, password)
                : password is null
                    ? X509Certificate2.CreateFromPemFile(path, tls.KeyFile)
                    : X509Certificate2.CreateFromEncryptedPemFile(path, password, tls.KeyFile);
            if (!certificate.HasPrivateKey)
            {
                throw new ConfigException($"server.tls.key_file: '{path}' has no private key with it; name the PEM key in key_file");
            }
            return certificate;
        }
        catch (Exception error) when (error is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new ConfigException($"server.tls.certificate_file: cannot load '{tls.CertificateFile}': {error.Message}");
        }
    }
}
