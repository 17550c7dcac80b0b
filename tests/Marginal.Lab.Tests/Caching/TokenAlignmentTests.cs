using Marginal.Lab.Caching;

namespace Marginal.Lab.Tests.Caching;

public sealed class TokenAlignmentTests
{
    // Query tokens q1 = (1,0,0) "open", q2 = (0,1,0) "file"; candidate c1 = (1,0,0) "open", c2 = (0,0.6,0.8) "file",
    // c3 = (0,0,1) "now". Cosines: q1 → [1, 0, 0], q2 → [0, 0.6, 0].
    private static readonly TokenVectors Query = new(["open", "file"], [0, 1], [1, 0, 0, 0, 1, 0], 3);

    private static readonly TokenVectors Candidate = new(["open", "file", "now"], [0, 1, 2], [1, 0, 0, 0, 0.6f, 0.8f, 0, 0, 1], 3);

    [Fact]
    public void Score_TwoByThreeTokens_MatchesHandComputedBertScore()
    {
        var score = TokenAlignment.Score(Query, Candidate);

        // Recall over the query's tokens: (1 + 0.6) / 2; precision over the candidate's: (1 + 0.6 + 0) / 3.
        Assert.Equal(0.8, score.Recall, 6);
        Assert.Equal(1.6 / 3, score.Precision, 6);
        Assert.Equal(2 * 0.8 * (1.6 / 3) / (0.8 + (1.6 / 3)), score.F1, 6);
        Assert.Equal(0.6, score.LowestQueryWord, 6);
        Assert.Equal(0, score.LowestCandidateWord, 6);
    }

    [Fact]
    public void Score_WordWeights_WeighEachTokenByItsWord()
    {
        var score = TokenAlignment.Score(Query, Candidate, word => word == "open" ? 2 : 1);

        Assert.Equal((2 + 0.6) / 3, score.Recall, 6);
        Assert.Equal((2 + 0.6 + 0) / 4, score.Precision, 6);
    }

    [Fact]
    public void Score_WordOfTwoTokensAndPunctuation_LowestWordIsTheMeanOfItsTokensAndSkipsPunctuation()
    {
        // Candidate words "non-stream" (two tokens, matched 1 and 0.5) and "?" (matched 0): the punctuation is no content word.
        var query = new TokenVectors(["stream"], [0], [1, 0], 2);
        var candidate = new TokenVectors(["nonstream", "?"], [0, 0, 1], [1, 0, 0.5f, 0.8660254f, 0, 1], 2);

        var score = TokenAlignment.Score(query, candidate);

        Assert.Equal(0.75, score.LowestCandidateWord, 5);
        Assert.Equal(1, score.LowestQueryWord, 6);
    }

    [Fact]
    public void FromHiddenStates_PiecesAndSpecialTokens_GroupsWordsDropsSpecialsAndPoolsEveryPosition()
    {
        (string, int)[] pieces = [("[CLS]", 101), ("non", 1), ("##stream", 2), ("?", 3), ("[SEP]", 102)];
        float[] hidden = [1, 1, 3, 4, 0, 2, 5, 0, 1, 1];

        var vectors = TokenVectors.FromHiddenStates(pieces, hidden, 2);

        Assert.Equal(["nonstream", "?"], vectors.Words);
        Assert.Equal(3, vectors.Count);
        Assert.Equal([0, 0, 1], Enumerable.Range(0, 3).Select(vectors.WordOf));
        Assert.Equal([0.6f, 0.8f], vectors.Vector(0).ToArray());
        Assert.Equal([0f, 1f], vectors.Vector(1).ToArray());
        // Sum of all five rows (10, 8), normalised.
        var norm = Math.Sqrt(164);
        Assert.Equal(10 / norm, vectors.SentenceVector[0], 5);
        Assert.Equal(8 / norm, vectors.SentenceVector[1], 5);
    }

    [Fact]
    public void IdfWeights_ContentAndPunctuation_IdfAndOne()
    {
        var terms = LexicalFeatures.TermsOf(["open the file", "close the file"]);
        var weight = TokenAlignment.IdfWeights(terms);

        Assert.Equal(Math.Log(1.5) + 1, weight("open"), 12);
        Assert.Equal(1, weight("the"), 12);
        Assert.Equal(1, weight("?"), 12);
    }
}
