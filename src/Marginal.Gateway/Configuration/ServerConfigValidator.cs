namespace Marginal.Gateway.Configuration;

/// <summary>The <c>server:</c> section: listen URL, TLS files, body limits, authentication modes.</summary>
internal sealed class ServerConfigValidator : IConfigValidator
{
    public void Validate(MarginalConfig config, string file)
    {
        if (!Uri.TryCreate(config.Server.Urls.Split(';')[0], UriKind.Absolute, out _))
        {
            throw new ConfigException($"{file}: server.urls: '{config.Server.Urls}' is not a URL (e.g. http://127.0.0.1:8080)");
        }
        if (config.Server.Tls is { } tls)
        {
            if (string.IsNullOrWhiteSpace(tls.CertificateFile))
            {
                throw new ConfigException($"{file}: server.tls.certificate_file: must name a PEM certificate or a PKCS#12 (.pfx) file");
            }
            if (!File.Exists(tls.CertificateFile))
            {
                throw new ConfigException($"{file}: server.tls.certificate_file: '{tls.CertificateFile}' does not exist");
            }
            if (tls.KeyFile is not null && !File.Exists(tls.KeyFile))
            {
                throw new ConfigException($"{file}: server.tls.key_file: '{tls.KeyFile}' does not exist");
            }
        }
        if (config.Server.MaxRequestBodyBytes < 1024)
        {
            throw new ConfigException($"{file}: server.max_request_body_bytes: must be at least 1024, got {config.Server.MaxRequestBodyBytes}");
        }
        if (config.Server.MaxBodyBytesInFlight is { } inFlight && inFlight < config.Server.MaxRequestBodyBytes)
        {
            throw new ConfigException($"{file}: server.max_body_bytes_in_flight: must be at least server.max_request_body_bytes ({config.Server.MaxRequestBodyBytes}), got {inFlight}");
        }
        if (!ConfigLoader.AuthModes.Contains(config.Server.Auth))
        {
            throw new ConfigException($"{file}: server.auth: '{config.Server.Auth}' is not allowed (allowed: {string.Join(", ", ConfigLoader.AuthModes)})");
        }
        if (!ConfigLoader.MetricsAuthModes.Contains(config.Server.MetricsAuth))
        {
            throw new ConfigException($"{file}: server.metrics_auth: '{config.Server.MetricsAuth}' is not allowed (allowed: {string.Join(", ", ConfigLoader.MetricsAuthModes)})");
        }
    }
}
