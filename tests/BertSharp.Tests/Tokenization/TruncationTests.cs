using BertSharp.Tokenization;

namespace BertSharp.Tests.Tokenization;

/// <summary>Encode's truncation: HF 'longest_first' (one token at a time from the longer sequence, from B on a tie).</summary>
public class TruncationTests
{
    private static readonly BertTokenizer Tok = new(SmallVocab.With());

    private static string Letters(int n, char first) =>
        string.Join(" ", Enumerable.Range(0, n).Select(i => ((char)(first + i % 13)).ToString()));

    /// <summary>HF's original loop, kept as the reference.</summary>
    private static (int A, int B) ReferenceLongestFirst(int la, int lb, int remove)
    {
        for (int i = 0; i < remove; i++)
        {
            if (la > lb) la--;
            else lb--;
        }
        return (la, lb);
    }

    [Fact]
    public void PairTruncationRemovesFromTheLongerSequence()
    {
        for (int la = 0; la <= 12; la++)
        for (int lb = 0; lb <= 12; lb++)
        for (int max = 4; max <= 28; max++)
        {
            var enc = Tok.Encode(Letters(la, 'a'), Letters(lb, 'n'), max);
            int remove = Math.Max(0, la + lb + 3 - max);
            var (ea, eb) = ReferenceLongestFirst(la, lb, remove);
            Assert.Equal(ea + eb + 3, enc.Length);
            int firstSep = Array.IndexOf(enc.InputIds, Tok.SepId);
            Assert.Equal(ea + 1, firstSep);
            Assert.Equal(Tok.Encode(Letters(ea, 'a')), enc.InputIds[1..firstSep]);
            Assert.Equal(Tok.Encode(Letters(eb, 'n')), enc.InputIds[(firstSep + 1)..^1]);
            Assert.Equal(Enumerable.Repeat(0, ea + 2).Concat(Enumerable.Repeat(1, eb + 1)), enc.TokenTypeIds);
        }
    }

    [Fact]
    public void SingleSequenceIsCutAtTheEnd()
    {
        var enc = Tok.Encode("hello world the lazy dog", null, maxLength: 4);
        Assert.Equal(new[] { "[CLS]", "hello", "world", "[SEP]" }, enc.Tokens);
        Assert.Equal(new[] { 0, 0, 0, 0 }, enc.TokenTypeIds);
        Assert.Equal(7, Tok.Encode("hello world the lazy dog", null, maxLength: 100).Length);
    }

    [Fact]
    public void WordPiecesAreCutIndividually()
    {
        var enc = Tok.Encode("unaffable", "hello", maxLength: 6);
        Assert.Equal(new[] { "[CLS]", "un", "##aff", "[SEP]", "hello", "[SEP]" }, enc.Tokens);
    }

    [Fact]
    public void DefaultMaxLengthIs512WithoutConfig()
    {
        Assert.Equal(512, Tok.DefaultMaxLength);
        var enc = Tok.Encode(Letters(600, 'a'), null);
        Assert.Equal(512, enc.Length);
        Assert.Equal(Tok.SepId, enc.InputIds[^1]);
    }

    [Fact]
    public void WithoutSpecialTokens()
    {
        var enc = Tok.Encode("hello world", "the dog", maxLength: 3, addSpecialTokens: false);
        Assert.Equal(new[] { "hello", "world", "the" }, enc.Tokens); // a tie: B loses the token
        Assert.Equal(new[] { 0, 0, 0 }, enc.TokenTypeIds); // HF: token types are all 0 without special tokens
    }

    [Fact]
    public void MaxLengthMustLeaveRoomForTokens()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Tok.Encode("a", "b", maxLength: 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tok.Encode("a", null, maxLength: 2));
    }
}
