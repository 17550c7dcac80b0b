using Marginal.Server.Composition;
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Marginal.Gateway.Configuration;
using Marginal.Server.Hosting;
using Marginal.Testing;
using OpenAI;

namespace Marginal.Server.Tests.Hosting;

/// <summary><c>server.tls</c>: HTTPS with a PEM or PKCS#12 certificate, and the mistakes refused at start.</summary>
public sealed class TlsTests : IAsyncLifetime
{
    private const string PasswordVariable = "MARGINAL_TEST_TLS_PASSWORD";
    private FakeUpstream _upstream = null!;
    private DirectoryInfo _dir = null!;
    private X509Certificate2 _certificate = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync();
        _dir = Directory.CreateTempSubdirectory("marginal-tls-");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        _certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        await File.WriteAllTextAsync(Path.Combine(_dir.FullName, "cert.pem"), _certificate.ExportCertificatePem());
        await File.WriteAllTextAsync(Path.Combine(_dir.FullName, "key.pem"), key.ExportPkcs8PrivateKeyPem());
        Environment.SetEnvironmentVariable(PasswordVariable, "pfx-password");
        await File.WriteAllBytesAsync(Path.Combine(_dir.FullName, "cert.pfx"), _certificate.Export(X509ContentType.Pkcs12, "pfx-password"));
    }

    public async Task DisposeAsync()
    {
        _certificate.Dispose();
        await _upstream.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    private MarginalConfig Config(string tls)
    {
        var path = Path.Combine(_dir.FullName, $"marginal-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, $"""
            server:
              auth: none
            {tls}
            storage:
              record_usage: false
            providers:
              upstream:
                kind: openai
                base_url: {_upstream.OpenAIBaseUrl}
            models:
              gpt-test:
                provider: upstream
                upstream: up-model
            """);
        return ConfigLoader.Load(path);
    }

    private string Tls(string lines) => "  tls:\n" + string.Join("\n", lines.Split('\n').Select(l => "    " + l.Replace("DIR", _dir.FullName, StringComparison.Ordinal)));

    /// <summary>An HTTP client that trusts exactly the test's certificate.</summary>
    private HttpClient Client(Uri baseAddress) => new(new HttpClientHandler
    {
        ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.Thumbprint == _certificate.Thumbprint,
    })
    { BaseAddress = baseAddress };

    [Theory]
    [InlineData("certificate_file: DIR/cert.pem\nkey_file: DIR/key.pem")]
    [InlineData("certificate_file: DIR/cert.pfx\npassword_env: " + PasswordVariable)]
    public async Task Serve_WithCertificate_AnswersOverHttpsWithHsts(string tls)
    {
        await using var app = MarginalServer.Create(Config(Tls(tls)), urls: "https://127.0.0.1:0");
        await app.StartAsync();
        var address = new Uri(app.Urls.First());
        using var http = Client(address);

        using var health = await http.GetAsync("/healthz");

        Assert.Equal("https", address.Scheme);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("max-age=31536000", health.Headers.GetValues("Strict-Transport-Security").Single());
        Assert.Equal("nosniff", health.Headers.GetValues("X-Content-Type-Options").Single());

        var chat = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions
        {
            Endpoint = new Uri(address, "/v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        }).GetChatClient("gpt-test");
        Assert.NotEmpty((await chat.CompleteChatAsync("hello over TLS")).Value.Content[0].Text);
    }

    [Fact]
    public async Task Serve_PlainHttpClientOnHttpsPort_GetsNoAnswer()
    {
        await using var app = MarginalServer.Create(Config(Tls("certificate_file: DIR/cert.pem\nkey_file: DIR/key.pem")), urls: "https://127.0.0.1:0");
        await app.StartAsync();
        var port = new Uri(app.Urls.First()).Port;
        using var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        HttpResponseMessage? cleartext = null;
        try
        {
            cleartext = await plain.GetAsync($"http://127.0.0.1:{port}/healthz");
        }
        catch (HttpRequestException)
        {
            // Dropped: fine.
        }

        // Kestrel answers a plain request on a TLS port with 400 or drops it; it never serves the route in the clear.
        Assert.True(cleartext is null || cleartext.StatusCode != HttpStatusCode.OK, $"served in the clear: {cleartext?.StatusCode}");
        cleartext?.Dispose();
    }

    [Theory]
    [InlineData("", "https://127.0.0.1:0", "server.tls: 'https://127.0.0.1:0' asks for HTTPS but no certificate is configured")]
    [InlineData("certificate_file: DIR/cert.pem\nkey_file: DIR/key.pem", "http://127.0.0.1:0", "server.urls: 'http://127.0.0.1:0' is plain HTTP while server.tls is set")]
    [InlineData("certificate_file: DIR/key.pem", "https://127.0.0.1:0", "server.tls.certificate_file: cannot load")]
    [InlineData("certificate_file: DIR/cert.pfx\npassword_env: MARGINAL_TEST_VARIABLE_NOBODY_SETS", "https://127.0.0.1:0", "server.tls.password_env: the environment variable MARGINAL_TEST_VARIABLE_NOBODY_SETS is not set")]
    public void Create_MismatchedTlsSettings_FailsWithOneLineNamingTheKey(string tls, string urls, string expected)
    {
        var config = Config(tls.Length == 0 ? "" : Tls(tls));

        var error = Assert.Throws<ConfigException>(() => MarginalServer.Create(config, urls: urls));

        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Load_CertificateFileMissing_NamesTheKey()
    {
        var error = Assert.Throws<ConfigException>(() => Config(Tls("certificate_file: DIR/nowhere.pem")));

        Assert.Contains("server.tls.certificate_file: '", error.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }
}
