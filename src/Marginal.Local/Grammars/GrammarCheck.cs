using System.Runtime.InteropServices;
using LLama;
using LLama.Native;

namespace Marginal.Local.Grammars;

/// <summary>
/// Asks llama.cpp whether it can parse a GBNF grammar, before the grammar reaches a sampler. llama.cpp's grammar
/// sampler is null when the grammar does not parse, and LLamaSharp adds it to the sampler chain regardless, where the
/// first sample dereferences it and ends the process: so a grammar is parsed here once, on the request's thread, and a
/// bad one is an error for that request alone. Thread-safe.
/// </summary>
internal static class GrammarCheck
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr ModelVocab(IntPtr model);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr InitGrammar(IntPtr vocab, [MarshalAs(UnmanagedType.LPUTF8Str)] string grammar, [MarshalAs(UnmanagedType.LPUTF8Str)] string root);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void FreeSampler(IntPtr sampler);

    private static readonly Lazy<(ModelVocab Vocab, InitGrammar Init, FreeSampler Free)> Functions = new(() =>
    {
        // The resolver LLamaSharp registers for its own assembly hands back the llama library it already loaded.
        var library = NativeLibrary.Load("llama", typeof(NativeApi).Assembly, null);
        return (
            Marshal.GetDelegateForFunctionPointer<ModelVocab>(NativeLibrary.GetExport(library, "llama_model_get_vocab")),
            Marshal.GetDelegateForFunctionPointer<InitGrammar>(NativeLibrary.GetExport(library, "llama_sampler_init_grammar")),
            Marshal.GetDelegateForFunctionPointer<FreeSampler>(NativeLibrary.GetExport(library, "llama_sampler_free")));
    });

    /// <summary>True when llama.cpp parses <paramref name="grammar"/> with the rule <c>root</c> as its start.</summary>
    public static bool Parses(LLamaWeights weights, string grammar)
    {
        var (vocab, init, free) = Functions.Value;
        var added = false;
        weights.NativeHandle.DangerousAddRef(ref added);
        try
        {
            var sampler = init(vocab(weights.NativeHandle.DangerousGetHandle()), grammar, "root");
            if (sampler == IntPtr.Zero)
            {
                return false;
            }
            free(sampler);
            return true;
        }
        finally
        {
            if (added)
            {
                weights.NativeHandle.DangerousRelease();
            }
        }
    }
}
