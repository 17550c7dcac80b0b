using LLama.Native;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Marginal.Local;

/// <summary>
/// Loads llama.cpp once per process. The backend and the log sink can only be chosen before the first native call,
/// so the first caller's choice holds for the process. llama.cpp's own messages go to the logger at Warning and Error
/// only (its Info output describes every tensor of every load).
/// <para>
/// Asking for <see cref="LocalBackend.Cuda"/> where no CUDA build of llama.cpp can load (no LLamaSharp.Backend.Cuda12
/// package beside the CPU one, no NVIDIA driver, or the CPU build already loaded by an earlier caller) fails with
/// <see cref="LocalBackendUnavailableException"/> instead of running every layer on the CPU unannounced.
/// </para>
/// </summary>
public static partial class NativeRuntime
{
    private static readonly Lock Gate = new();
    private static ILogger _logger = NullLogger.Instance;
    private static bool _loaded;

    /// <exception cref="LocalBackendUnavailableException"><paramref name="backend"/> is CUDA and llama.cpp has no GPU to offload to.</exception>
    public static void EnsureLoaded(LocalBackend backend = LocalBackend.Cpu, ILogger? logger = null)
    {
        Load(backend, logger);
        // Auto-fallback loads the CPU build when the CUDA one cannot load; llama.cpp then reports no GPU offload.
        if (backend == LocalBackend.Cuda && !NativeApi.llama_supports_gpu_offload())
        {
            throw new LocalBackendUnavailableException(
                "backend: cuda: llama.cpp found no CUDA device (it needs the LLamaSharp.Backend.Cuda12 package next to LLamaSharp.Backend.Cpu, an NVIDIA driver for CUDA 12, and no CPU-only model loaded earlier in the process); use backend: cpu");
        }
    }

    private static void Load(LocalBackend backend, ILogger? logger)
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
