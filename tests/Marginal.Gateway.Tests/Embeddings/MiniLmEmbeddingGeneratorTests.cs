using System.Numerics.Tensors;
using Marginal.Gateway.Embeddings;

namespace Marginal.Gateway.Tests.Embeddings;

public sealed class MiniLmEmbeddingGeneratorTests
{
    [Fact]
    public void Embed_Paraphrase_IsCloserThanAnUnrelatedPromptAndVectorsAreUnitLength()
    {
        var vectors = MiniLmEmbeddingGenerator.Shared.Embed(["What is the capital of France?", "Tell me France's capital city", "How do I bake sourdough bread?"]);

        Assert.All(vectors, v => Assert.Equal(MiniLmEmbeddingGenerator.Dimensions, v.Length));
        Assert.All(vectors, v => Assert.Equal(1f, TensorPrimitives.Dot<float>(v, v), 0.001f));
        var paraphrase = TensorPrimitives.Dot<float>(vectors[0], vectors[1]);
        var unrelated = TensorPrimitives.Dot<float>(vectors[0], vectors[2]);
        Assert.True(paraphrase > 0.8f && unrelated < 0.4f, $"paraphrase {paraphrase}, unrelated {unrelated}");
    }

    [Fact]
    public async Task GenerateAsync_SameTextTwice_GivesTheSameVector()
    {
        var result = await MiniLmEmbeddingGenerator.Shared.GenerateAsync(["hello world", "hello world"]);

        Assert.Equal(result[0].Vector.ToArray(), result[1].Vector.ToArray());
    }
}
