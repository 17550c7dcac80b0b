using LLama;
using LLama.Native;

namespace Marginal.Local;

/// <summary>Quantizes a GGUF model with llama.cpp's quantizer, output tensor included (it is the largest tensor of a small model).</summary>
public static class ModelQuantizer
{
    /// <summary>The types accepted by <see cref="Quantize"/>, as written on the command line.</summary>
    public static readonly string[] Types = ["q8_0", "q4_0", "q4_k_m"];

    /// <summary>Maps a type name to llama.cpp's file type; false when the name is not one of <see cref="Types"/>.</summary>
    public static bool TryParseType(string name, out LLamaFtype type)
    {
        type = name switch
        {
            "q8_0" => LLamaFtype.MOSTLY_Q8_0,
            "q4_0" => LLamaFtype.MOSTLY_Q4_0,
            "q4_k_m" => LLamaFtype.MOSTLY_Q4_K_M,
            _ => LLamaFtype.ALL_F32,
        };
        return type != LLamaFtype.ALL_F32;
    }

    /// <summary>Writes <paramref name="output"/> as <paramref name="type"/>. Throws <see cref="InvalidOperationException"/> when llama.cpp reports failure.</summary>
    public static void Quantize(string input, string output, LLamaFtype type, int threads = 0)
    {
        NativeRuntime.EnsureLoaded();
        if (!LLamaQuantizer.Quantize(input, output, type, threads <= 0 ? Environment.ProcessorCount : threads, allowRequantize: true, quantizeOutputTensor: true))
        {
            throw new InvalidOperationException($"llama.cpp could not quantize {Path.GetFileName(input)}.");
        }
    }
}
