using Marginal.Gateway.Configuration;
using Marginal.Gateway.Pipeline;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Marginal.Server.Hosting;

/// <summary>
/// Reloads marginal.yaml when it changes and swaps the gateway snapshot whole. Requests in flight finish on
/// the snapshot they started with. A file that fails validation is logged and ignored: the last good one stays.
/// Server settings (urls, body limit) take effect on restart only.
/// </summary>
internal sealed partial class ConfigWatcher(string path, GatewayModelSource models, TimeProvider time, ILogger<ConfigWatcher> logger) : BackgroundService
{
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(200);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var full = Path.GetFullPath(path);
        using var watcher = new FileSystemWatcher(Path.GetDirectoryName(full)!, Path.GetFileName(full))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.FileName | NotifyFilters.CreationTime,
        };
        var changed = new SemaphoreSlim(0);
        watcher.Changed += (_, _) => changed.Release();
        watcher.Created += (_, _) => changed.Release();
        watcher.Renamed += (_, _) => changed.Release();
        watcher.EnableRaisingEvents = true;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await changed.WaitAsync(stoppingToken);
                // Editors write in bursts; take the file once it settles.
                await Task.Delay(Debounce, time, stoppingToken);
                while (changed.CurrentCount > 0)
                {
                    await changed.WaitAsync(stoppingToken);
                }
                Reload(full);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private void Reload(string full)
    {
        try
        {
            var config = ConfigLoader.Load(full);
            models.Swap(GatewayModel.Build(config, time));
            LogReloaded(logger, full, config.Models.Count);
        }
        catch (ConfigException ex)
        {
            LogRejected(logger, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Configuration reloaded from {Path}: {Models} models")]
    private static partial void LogReloaded(ILogger logger, string path, int models);

    [LoggerMessage(Level = LogLevel.Error, Message = "Configuration change ignored, the previous one stays: {Reason}")]
    private static partial void LogRejected(ILogger logger, string reason);
}
