using System.Numerics.Tensors;
using Marginal.Gateway.Embeddings;
using Marginal.Lab.Caching;

namespace Marginal.Lab.Tests.Caching;

public sealed class MiniLmTokenEncoderTests
{
    [Fact]
    public void Encode_ShortPrompts_MeanPoolingReproducesThePackagesSentenceVector()
    {
        string[] texts = ["What is the capital of France?", "Use the non-streaming mode of `openai.ChatCompletion`"];

        var tokens = MiniLmTokenEncoder.Shared.Encode(texts);
        var sentences = MiniLmEmbeddingGenerator.Shared.Embed(texts);

        for (var i = 0; i < texts.Length; i++)
        {
            Assert.True(TensorPrimitives.Dot<float>(tokens[i].SentenceVector, sentences[i]) > 0.999f);
        }
    }

    [Fact]
    public void Encode_HyphenatedWord_SplitsIntoWordsWithUnitRowsAndNoSpecialTokens()
    {
        var vectors = MiniLmTokenEncoder.Shared.Encode(["Non-streaming mode"])[0];

        Assert.Equal(["non", "-", "streaming", "mode"], vectors.Words);
        Assert.Equal(4, vectors.Count);
        Assert.Equal(MiniLmEmbeddingGenerator.Dimensions, vectors.Dimensions);
        Assert.All(Enumerable.Range(0, vectors.Count), t => Assert.Equal(1f, TensorPrimitives.Norm(vectors.Vector(t)), 0.001f));
    }

    [Fact]
    public void Score_SameTextTwice_AlignsEveryTokenWithItself()
    {
        var vectors = MiniLmTokenEncoder.Shared.Encode(["How do I stream a chat completion?", "How do I stream a chat completion?"]);

        var score = TokenAlignment.Score(vectors[0], vectors[1]);

        Assert.Equal(1, score.F1, 4);
        Assert.Equal(1, score.LowestQueryWord, 4);
    }
}
