using System.Numerics.Tensors;
using Marginal.Gateway.Embeddings;

namespace Marginal.Gateway.Tests.Embeddings;

public sealed class ArcticXsEmbeddingGeneratorTests
{
    private static readonly string[] Prompts = ["What is the capital of France?", "Tell me France's capital city", "How do I bake sourdough bread?"];

    [Fact]
    public void Embed_Paraphrase_IsCloserThanAnUnrelatedPromptAndVectorsAreUnitLength()
    {
        var vectors = ArcticXsEmbeddingGenerator.Shared.Embed(Prompts);

        Assert.All(vectors, v => Assert.Equal(ArcticXsEmbeddingGenerator.Dimensions, v.Length));
        Assert.All(vectors, v => Assert.Equal(1f, TensorPrimitives.Dot<float>(v, v), 0.001f));
        Assert.True(TensorPrimitives.Dot<float>(vectors[0], vectors[1]) > TensorPrimitives.Dot<float>(vectors[0], vectors[2]));
    }

    [Fact]
    public void EnsembleEmbed_TwoPrompts_DotIsTheMeanOfBothModelsCosines()
    {
        var minilm = MiniLmEmbeddingGenerator.Shared.Embed(Prompts);
        var arctic = ArcticXsEmbeddingGenerator.Shared.Embed(Prompts);

        var ensemble = EnsembleEmbeddingGenerator.Shared.Embed(Prompts);

        var mean = (TensorPrimitives.Dot<float>(minilm[0], minilm[1]) + TensorPrimitives.Dot<float>(arctic[0], arctic[1])) / 2;
        Assert.Equal(768, ensemble[0].Length);
        Assert.Equal(mean, TensorPrimitives.Dot<float>(ensemble[0], ensemble[1]), 0.0001f);
        Assert.Equal(1f, TensorPrimitives.Dot<float>(ensemble[0], ensemble[0]), 0.001f);
    }
}
