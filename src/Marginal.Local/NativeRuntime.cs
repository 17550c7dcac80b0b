using LLama.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Marginal.Local;

/// <summary>
/// Loads llama.cpp once per process. The backend and the log sink can only be chosen before the first native call,
/// so the first caller's choice holds for the process. llama.cpp's own messages go to the logger at Warning and Error
/// only (its Info output describes every tensor of every load).
/// </summary>
public static partial class NativeRuntime
{
    private static readonly Lock Gate = new();
    private static ILogger _logger = NullLogger.Instance;
    private static bool _loaded;

    public static void EnsureLoaded(LocalBackend backend = LocalBackend.Cpu, ILogger? logger = null)
    {
        lock (Gate)
        {
            if (_loaded)
            {
                return;
            }
            _logger = logger ?? NullLogger.Instance;
            if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
            {
                NativeLibraryConfig.All
                    .WithCuda(backend == LocalBackend.Cuda)
                    .WithAutoFallback(true)
                    .WithLogCallback(OnNativeLog);
            }
            // The first call into llama.cpp loads it; the quantizer's entry point fails with DllNotFoundException
            // when it is that first call, so every path starts here.
            NativeApi.llama_empty_call();
            _loaded = true;
        }
    }

    private static void OnNativeLog(LLamaLogLevel level, string message)
    {
        if (level == LLamaLogLevel.Error)
        {
            LogNativeError(_logger, message.TrimEnd());
        }
        else if (level == LLamaLogLevel.Warning)
        {
            LogNativeWarning(_logger, message.TrimEnd());
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "llama.cpp: {Message}")]
    private static partial void LogNativeWarning(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "llama.cpp: {Message}")]
    private static partial void LogNativeError(ILogger logger, string message);
}
