using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;
using Marginal.Local.TestModels;
using Microsoft.Extensions.AI;

namespace Marginal.Local.Tests.TestModels;

[Collection(LocalModelCollection.Name)]
public sealed class TestModelWriterTests(TestModelFiles files)
{
    [Fact]
    public void Write_Tiny_LoadsAsLlamaWithGpt2Vocabulary()
    {
        NativeRuntime.EnsureLoaded();

        using var weights = LLamaWeights.LoadFromFile(new ModelParams(files.Path));

        Assert.Equal("llama", weights.Metadata["general.architecture"]);
        Assert.Equal(50_257, weights.Vocab.Count);
        Assert.Equal(64, weights.EmbeddingSize);
        // GPT-2's own ids for "Hello world, this is a test" (its tokenizer, encoder.json).
        var tokens = weights.Tokenize("Hello world, this is a test", add_bos: true, special: true, Encoding.UTF8).Select(t => (int)t);
        Assert.Equal([15496, 995, 11, 428, 318, 257, 1332], tokens);
    }

    [Fact]
    public void Gpt2Vocabulary_Load_RebuildsEveryMerge()
    {
        var vocabulary = Gpt2Vocabulary.Load();

        // GPT-2 has 256 byte tokens, 50,000 merges and <|endoftext|>; its first merge is "Ġ t" (space + t).
        Assert.Equal(50_257, vocabulary.Tokens.Count);
        Assert.Equal(50_000, vocabulary.Merges.Count);
        Assert.Equal("Ġ t", vocabulary.Merges[0]);
        Assert.Equal("<|endoftext|>", vocabulary.Tokens[50_256]);
    }

    [Fact]
    public void Write_SameSeed_SameBytes()
    {
        var again = Path.Combine(files.Directory, "again.gguf");

        TestModelWriter.Write(again, TestModelShape.Tiny);

        Assert.True(File.ReadAllBytes(files.Path).AsSpan().SequenceEqual(File.ReadAllBytes(again)));
        File.Delete(again);
    }

    [Fact]
    public void PromptFormat_ModelWithTemplate_UsesTheModelsTemplate()
    {
        using var client = new LocalChatClient(new LocalModelOptions { ModelPath = files.Path, MaxBatch = 1, Context = 64, Threads = 2 });

        var prompt = client.Format.Format([new ChatMessage(ChatRole.System, "Be brief."), new ChatMessage(ChatRole.User, "hi")]);

        Assert.True(client.Format.UsesModelTemplate);
        Assert.Equal("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nhi [/INST]", prompt);
    }

    [Fact]
    public void PromptFormat_ModelWithoutTemplate_FallsBackToChatML()
    {
        using var client = new LocalChatClient(new LocalModelOptions { ModelPath = files.WithoutTemplatePath, MaxBatch = 1, Context = 64, Threads = 2 });

        var prompt = client.Format.Format([new ChatMessage(ChatRole.System, "Be brief."), new ChatMessage(ChatRole.User, "hi")]);

        Assert.False(client.Format.UsesModelTemplate);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", prompt);
    }

    [Theory]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    public async Task Quantize_Tiny_SmallerFileThatLoadsAndGenerates(string type)
    {
        var output = Path.Combine(files.Directory, $"tiny-{type}.gguf");
        Assert.True(ModelQuantizer.TryParseType(type, out var ftype));

        ModelQuantizer.Quantize(files.Path, output, ftype, threads: 2);

        // Q8_0 stores 8.5 bits a weight and Q4_0 4.5 (ggml's 32-weight blocks plus a 16-bit scale), against F16's 16.
        Assert.True(new FileInfo(output).Length < new FileInfo(files.Path).Length * 0.6, $"{new FileInfo(output).Length} bytes");
        using var client = new LocalChatClient(new LocalModelOptions { ModelPath = output, MaxBatch = 1, Context = 64, Threads = 2 });
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "hello")], new ChatOptions { Temperature = 0, MaxOutputTokens = 5 });
        Assert.Equal(5, response.Usage!.OutputTokenCount);
        Assert.NotEmpty(response.Text);
        File.Delete(output);
    }

    [Fact]
    public void TryParseType_Unknown_False()
    {
        Assert.False(ModelQuantizer.TryParseType("q3_x", out LLamaFtype _));
    }
}
