using Marginal.Gateway.Deferral;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Marginal.Server.Hosting;

/// <summary>Ticks the <see cref="DeferralQueue"/> every <c>deferral.flush_interval</c>, one tick at a time, from start to shutdown.</summary>
internal sealed partial class DeferralService(DeferralQueue queue, TimeSpan every, TimeProvider time, ILogger<DeferralService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(every, time);
        try
        {
            do
            {
                try
                {
                    await queue.TickAsync(stoppingToken);
                }
                catch (Exception error) when (error is not OperationCanceledException)
                {
                    // The store or a provider failed this tick; the jobs are unchanged in the store and the next tick retries.
                    LogTickFailed(logger, error.GetType().Name, error.Message);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deferral tick failed ({Kind}): {Reason}")]
    private static partial void LogTickFailed(ILogger logger, string kind, string reason);
}
