using Marginal.Core.Storage;

namespace Marginal.Gateway.Configuration;

// What the user wrote in marginal.yaml. Keys are snake_case in YAML (base_url, api_key_env).
// Mutable only so YamlDotNet can fill them; ConfigLoader validates and nothing changes them afterwards.

/// <summary>The whole configuration file.</summary>
public sealed class MarginalConfig
{
    public ServerConfig Server { get; set; } = new();
    public Dictionary<string, ProviderConfig> Providers { get; set; } = [];
    public Dictionary<string, ModelConfig> Models { get; set; } = [];
    public StorageConfig Storage { get; set; } = new();
    public PricingConfig Pricing { get; set; } = new();
    public Dictionary<string, RouteConfig> Routes { get; set; } = [];

    public BillingConfig Billing { get; set; } = new();
    public DeferralConfig Deferral { get; set; } = new();
    public ShapingConfig Shaping { get; set; } = new();
    public CacheConfig Cache { get; set; } = new();
    public IdempotencyConfig Idempotency { get; set; } = new();

    /// <summary>Shared state of a cluster of nodes; null (absent): each node keeps it in process.</summary>
    public RedisConfig? Redis { get; set; }
}

/// <summary>Pricing plans, budgets and limits (README, "Pricing plans, budgets and invoices").</summary>
public sealed class BillingConfig
{
    /// <summary>The plans file: plans, tenants' plans, budgets and rate limits; relative to this file. None: cost passes through, no limits.</summary>
    public string? Plans { get; set; }

    /// <summary>Output tokens a budget reserves for a request that sets no max_tokens.</summary>
    public int DefaultMaxOutputTokens { get; set; } = 4096;
}

/// <summary>Prices: the shipped book, optionally overlaid by the deployment's own.</summary>
public sealed class PricingConfig
{
    /// <summary>A price-book file whose entries replace the shipped entries of the same id.</summary>
    public string? Book { get; set; }
}

public sealed class ServerConfig
{
    /// <summary>Where to listen. Loopback unless the operator says otherwise.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>Largest request body accepted, in bytes; larger ones get 413 before the body is read.</summary>
    public long MaxRequestBodyBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>
    /// Bytes of large request bodies (64 KiB and more) served at once; a body that does not fit waits its turn (up to
    /// 30 s, then 503). Bounds the memory that large bodies take. Default: four bodies of <see cref="MaxRequestBodyBytes"/>.
    /// </summary>
    public long? MaxBodyBytesInFlight { get; set; }

    /// <summary>The budget in force: <see cref="MaxBodyBytesInFlight"/>, or four of the largest bodies allowed.</summary>
    public long BodyBytesInFlight => MaxBodyBytesInFlight ?? 4 * MaxRequestBodyBytes;

    /// <summary>
    /// <c>keys</c>: every <c>/v1</c> request needs a virtual key (<c>marginal keys create</c>) and is attributed to its
    /// tenant. <c>none</c>: no check; requests are attributed to tenant <c>default</c>.
    /// </summary>
    public string Auth { get; set; } = "keys";

    /// <summary>Environment variable holding the admin key for <c>/admin</c>; while it is unset the admin API refuses every call.</summary>
    public string AdminKeyEnv { get; set; } = "MARGINAL_ADMIN_KEY";

    /// <summary>
    /// <c>open</c> (default): <c>/metrics</c> answers whoever reaches the listener (loopback unless <see cref="Urls"/>
    /// says otherwise). <c>admin</c>: it needs the admin key as <c>Bearer</c>, like the admin API, with the same throttle.
    /// </summary>
    public string MetricsAuth { get; set; } = "open";

    /// <summary>OTLP endpoint for traces (e.g. http://127.0.0.1:4317); none: traces are not exported.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>HTTPS for every <c>https://</c> address in <see cref="Urls"/>; none: plain HTTP only.</summary>
    public TlsConfig? Tls { get; set; }
}

/// <summary>
/// The server certificate: a PEM certificate (chain) with its PEM private key, or a PKCS#12 (.pfx/.p12) file. A
/// password, when the key or the PKCS#12 file has one, comes from an environment variable, never from this file.
/// </summary>
public sealed class TlsConfig
{
    /// <summary>PEM certificate (<c>.pem</c>/<c>.crt</c>, the chain may follow the leaf) or PKCS#12 (<c>.pfx</c>/<c>.p12</c>).</summary>
    public string? CertificateFile { get; set; }

    /// <summary>PEM private key of a PEM certificate; leave unset for PKCS#12.</summary>
    public string? KeyFile { get; set; }

    /// <summary>Environment variable holding the password of an encrypted key or PKCS#12 file.</summary>
    public string? PasswordEnv { get; set; }
}

public sealed class ProviderConfig
{
    /// <summary><c>openai</c> (any OpenAI-compatible API), <c>anthropic</c>, or <c>local</c> (a GGUF model served in-process).</summary>
    public string? Kind { get; set; }

    /// <summary>Base URL including the version segment, e.g. https://api.openai.com/v1.</summary>
    public string? BaseUrl { get; set; }

    /// <summary>Environment variable that holds the API key. Keys never live in this file.</summary>
    public string? ApiKeyEnv { get; set; }

    /// <summary>File that holds the API key (e.g. a mounted secret).</summary>
    public string? ApiKeyFile { get; set; }

    /// <summary>Header that carries the key: <c>authorization</c> (Bearer, default) or another name such as Azure's <c>api-key</c>.</summary>
    public string? ApiKeyHeader { get; set; }

    /// <summary>Time allowed until the upstream's response headers arrive, e.g. <c>30s</c>, <c>500ms</c>, <c>2m</c>.</summary>
    public string? Timeout { get; set; }

    /// <summary>Extra headers sent with every request.</summary>
    public Dictionary<string, string> Headers { get; set; } = [];

    // kind: local only.

    /// <summary>The GGUF model file (relative paths are from the working directory).</summary>
    public string? Path { get; set; }

    /// <summary>CPU threads for decoding; default: every core.</summary>
    public int? Threads { get; set; }

    /// <summary>Most sequences decoded together (continuous batching); default 8.</summary>
    public int? MaxBatch { get; set; }

    /// <summary>Most requests waiting for a batch slot; one more gets 429 with Retry-After. Default 64.</summary>
    public int? QueueLimit { get; set; }

    /// <summary>Tokens per request, prompt plus output; the KV cache holds max_batch of them. Default: the model's context, at most 4096.</summary>
    public int? Context { get; set; }

    /// <summary><c>cpu</c> (default) or <c>cuda</c>.</summary>
    public string? Backend { get; set; }

    /// <summary>
    /// Most characters in a JSON string of grammar-constrained output (<c>response_format</c>, tool arguments) whose
    /// schema sets no <c>maxLength</c>; default 0: no bound.
    /// </summary>
    public int? JsonStringLimit { get; set; }

    /// <summary>
    /// Spill-over bound, e.g. <c>500ms</c>: when a request would wait longer than this for a batch slot, the model's
    /// next fallback serves it instead. None: requests queue up to <see cref="QueueLimit"/>.
    /// </summary>
    public string? MaxQueueWait { get; set; }

    /// <summary>What the hardware costs; none: requests on it are recorded unpriced.</summary>
    public PoolConfig? Pool { get; set; }
}

/// <summary>
/// An owned pool's costs (docs/economics.md, "Owned capacity"). No defaults: each figure is the operator's own, and
/// an absent one counts as zero (<c>pue</c> as 1).
/// </summary>
public sealed class PoolConfig
{
    /// <summary>Purchase price of the hardware, USD.</summary>
    public decimal PurchaseUsd { get; set; }

    /// <summary>Months over which the purchase is written off, straight-line.</summary>
    public int LifetimeMonths { get; set; }

    /// <summary>Power drawn while decoding, kW.</summary>
    public decimal PowerKw { get; set; }

    /// <summary>Electricity price, USD per kWh.</summary>
    public decimal UsdPerKwh { get; set; }

    /// <summary>Power usage effectiveness: facility power ÷ IT power, at least 1.</summary>
    public decimal Pue { get; set; } = 1m;

    /// <summary>Rack space and connectivity, USD per month.</summary>
    public decimal ColocationUsdPerMonth { get; set; }

    /// <summary>People and support, USD per month.</summary>
    public decimal OperationsUsdPerMonth { get; set; }

    /// <summary>
    /// Power drawn while idle, kW; optional. Set, the economics report counts idle energy (idle_power_kw × pue ×
    /// usd_per_kwh per idle hour) in stranded cost; unset, stranded cost leaves energy out (docs/economics.md).
    /// </summary>
    public decimal? IdlePowerKw { get; set; }
}

public sealed class ModelConfig
{
    /// <summary>Name of an entry under <c>providers</c>.</summary>
    public string? Provider { get; set; }

    /// <summary>The provider's own id for the model; defaults to the configured name.</summary>
    public string? Upstream { get; set; }

    /// <summary>The price-book entry that prices this model; defaults to the model's name, then its upstream id.</summary>
    public string? Price { get; set; }

    /// <summary><c>chat</c> (default) or <c>embedding</c>.</summary>
    public string? Type { get; set; }

    /// <summary>Other configured models to try, in order, when this one fails with 429, 5xx, a timeout or a connection error.</summary>
    public List<string> Fallbacks { get; set; } = [];
}
