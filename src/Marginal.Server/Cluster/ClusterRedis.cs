using Marginal.Gateway.Configuration;
using Marginal.Storage.Redis;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Marginal.Server.Cluster;

/// <summary>
/// What a node shares with the other nodes of its cluster through Redis (<c>redis:</c> in marginal.yaml): the budget
/// and rate-limit counters, the exact response cache, config-change notifications, router labels, the embeddings
/// of routed requests awaiting feedback and semantic cache entries. One connection
/// serves them all.
/// </summary>
internal sealed class ClusterRedis : IAsyncDisposable
{
    private ClusterRedis(ConnectionMultiplexer connection, RedisConfig config, ILoggerFactory? loggers)
    {
        Connection = connection;
        var database = connection.GetDatabase();
        // Each logs its Redis outages once (RedisReachability).
        Counters = new RedisLimitCounters(database, config.KeyPrefix, config.FailOpen, loggers?.CreateLogger<RedisLimitCounters>());
        Cache = new RedisResponseCacheStore(new RedisByteStore(database, config.KeyPrefix, new RedisReachability(loggers?.CreateLogger<RedisResponseCacheStore>(), "exact response cache")));
        Changes = new RedisConfigChanges(connection, config.KeyPrefix);
        RouteLabels = new RedisConfigChanges(connection, config.KeyPrefix, "route-feedback");
        SemanticEntries = new RedisConfigChanges(connection, config.KeyPrefix, "semantic");
        KeyPrefix = config.KeyPrefix;
        RoutePending = config.FeedbackWindow is { } window
            ? new RedisRoutePending(database, config.KeyPrefix, window, new RedisReachability(loggers?.CreateLogger<RedisRoutePending>(), "router's pending feedback"))
            : null;
    }

    public ConnectionMultiplexer Connection { get; }

    public RedisLimitCounters Counters { get; }

    public RedisResponseCacheStore Cache { get; }

    public RedisConfigChanges Changes { get; }

    /// <summary>Router labels learned from feedback, for every node's <see cref="Marginal.Gateway.Routing.RouteFeedback"/> (<see cref="ClusterRouteFeedback"/>).</summary>
    public RedisConfigChanges RouteLabels { get; }

    /// <summary>Semantic cache entries added on one node, for every other node's index (<see cref="ClusterSemanticCache"/>).</summary>
    public RedisConfigChanges SemanticEntries { get; }

    /// <summary>The prompt embeddings of requests routed to the weak model, for feedback on any node; null with <c>route_feedback_window: off</c>.</summary>
    public RedisRoutePending? RoutePending { get; }

    /// <summary>What every key and channel of this cluster starts with (<c>redis.key_prefix</c>).</summary>
    public string KeyPrefix { get; }

    /// <summary>
    /// Connects to the Redis that <paramref name="config"/> names. The connection string comes from the environment or a
    /// file only; an unreachable server at start is a <see cref="ConfigException"/> (a node does not start blind).
    /// Afterwards the connection heals by itself, and while it is down every command fails at once (no backlog), so a
    /// request waits for no timeout: budgets follow <c>budgets_fail</c> and the cache misses. <paramref name="loggers"/>
    /// logs the outages (none: they go unlogged, as for the CLI).
    /// </summary>
    public static ClusterRedis Connect(RedisConfig config, ILoggerFactory? loggers = null)
    {
        var text = ReadConnectionString(config);
        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(text);
        }
        catch (ArgumentException error)
        {
            // Never echo the string itself: it may hold the password.
            throw new ConfigException($"redis: the connection string is not valid ({error.GetType().Name}); expected host:port[,password=…]");
        }
        options.AbortOnConnectFail = true;
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ConnectTimeout = Math.Min(options.ConnectTimeout, 5000);
        options.AsyncTimeout = Math.Min(options.AsyncTimeout, 2000);
        options.SyncTimeout = Math.Min(options.SyncTimeout, 2000);
        options.ClientName ??= "marginal";
        // Reconnect tries 0.5 s apart at first, growing to 5 s at most (the library's default grows to 10 s): after a
        // Redis restart a node shares its cache and counters again within seconds.
        options.ReconnectRetryPolicy = new ExponentialRetry(500, 5000);
        ConnectionMultiplexer connection;
        try
        {
            connection = ConnectionMultiplexer.Connect(options);
        }
        catch (RedisConnectionException error)
        {
            throw new ConfigException($"redis: cannot reach {string.Join(", ", options.EndPoints)}: {error.FailureType}");
        }
        return new ClusterRedis(connection, config, loggers);
    }

    private static string ReadConnectionString(RedisConfig config)
    {
        if (config.ConnectionStringEnv is { } env)
        {
            var value = Environment.GetEnvironmentVariable(env);
            return string.IsNullOrWhiteSpace(value)
                ? throw new ConfigException($"redis.connection_string_env: the environment variable {env} is not set; it must hold the Redis connection string (host:port[,password=…])")
                : value;
        }
        try
        {
            return File.ReadAllText(config.ConnectionStringFile!).Trim();
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"redis.connection_string_file: cannot read '{config.ConnectionStringFile}': {error.Message}");
        }
    }

    public async ValueTask DisposeAsync() => await Connection.DisposeAsync().ConfigureAwait(false);
}
