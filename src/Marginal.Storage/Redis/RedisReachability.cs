using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Marginal.Storage.Redis;

/// <summary>
/// Whether Redis answered the last call, so that an outage is logged once when it starts and once when it ends, never
/// once per request. Thread-safe.
/// </summary>
public sealed partial class RedisReachability(ILogger? logger, string what)
{
    private int _down;

    /// <summary>Where outages are logged; none: they go unlogged.</summary>
    public ILogger? Logger { get; } = logger;

    /// <summary>True after a failed call until the next successful one.</summary>
    public bool IsDown => Volatile.Read(ref _down) == 1;

    /// <summary>True when <paramref name="error"/> means Redis cannot be reached or did not answer in time.</summary>
    public static bool IsUnavailable(Exception error) => error is RedisConnectionException or RedisTimeoutException or TimeoutException;

    /// <summary>Records a failed call; logs only the first of an outage.</summary>
    public void Failed(Exception error)
    {
        if (Interlocked.Exchange(ref _down, 1) == 0 && Logger is { } log)
        {
            LogDown(log, what, error.GetType().Name, error.Message);
        }
    }

    /// <summary>Records a successful call; logs the end of an outage.</summary>
    public void Succeeded()
    {
        if (Volatile.Read(ref _down) == 1 && Interlocked.Exchange(ref _down, 0) == 1 && Logger is { } log)
        {
            LogUp(log, what);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Redis unreachable for the {What} ({Error}: {Reason}); logged once until it answers again")]
    private static partial void LogDown(ILogger logger, string what, string error, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis answers again for the {What}")]
    private static partial void LogUp(ILogger logger, string what);
}
