using Marginal.Gateway.Configuration;
using Marginal.Gateway.Model;
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

    private readonly SemaphoreSlim _changed = new(0);
    private readonly Lock _reloading = new();
    private FileSystemWatcher? _watcher;

    /// <summary>Raised after the file changed here and was reloaded (not after a <see cref="Reload"/> that another node asked for).</summary>
    public event Action? Reloaded;

    /// <summary>Starts watching before the host reports started, so no change made after start is missed.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path);
        _watcher = new FileSystemWatcher(Path.GetDirectoryName(full)!, Path.GetFileName(full))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.FileName | NotifyFilters.CreationTime,
        };
        _watcher.Changed += (_, _) => _changed.Release();
        _watcher.Created += (_, _) => _changed.Release();
        _watcher.Renamed += (_, _) => _changed.Release();
        _watcher.EnableRaisingEvents = true;
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await _changed.WaitAsync(stoppingToken);
                // Editors write in bursts; take the file once it settles.
                await Task.Delay(Debounce, time, stoppingToken);
                while (_changed.CurrentCount > 0)
                {
                    await _changed.WaitAsync(stoppingToken);
                }
                Reload(announce: true);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override void Dispose()
    {
        _watcher?.Dispose();
        _changed.Dispose();
        base.Dispose();
    }

    /// <summary>
    /// Reads the file again and swaps the snapshot when it is valid; <paramref name="announce"/> raises
    /// <see cref="Reloaded"/> (a change made here, for the other nodes of a cluster to hear).
    /// </summary>
    public void Reload(bool announce)
    {
        var full = Path.GetFullPath(path);
        lock (_reloading)
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
                return;
            }
        }
        if (announce)
        {
            Reloaded?.Invoke();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Configuration reloaded from {Path}: {Models} models")]
    private static partial void LogReloaded(ILogger logger, string path, int models);

    [LoggerMessage(Level = LogLevel.Error, Message = "Configuration change ignored, the previous one stays: {Reason}")]
    private static partial void LogRejected(ILogger logger, string reason);
}
