using BertSharp.Tokenization;

namespace BertSharp.Tests.Tokenization;

/// <summary>HF BertTokenizer rules on an in-memory vocabulary (no data files needed).</summary>
public class TokenizerBehaviourTests
{
    private static readonly BertTokenizer Uncased = new(SmallVocab.With("中", "文", "中文", "##文"));

    [Fact]
    public void SpecialIdsAndLookups()
    {
        Assert.Equal((0, 1, 2, 3, 4), (Uncased.PadId, Uncased.UnkId, Uncased.ClsId, Uncased.SepId, Uncased.MaskId));
        Assert.Equal("hello", Uncased.IdToToken(Uncased.TokenToId("hello")));
        Assert.Equal(Uncased.UnkId, Uncased.TokenToId("no-such-token"));
        Assert.True(Uncased.Contains("##able"));
        Assert.False(Uncased.Contains("able"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Uncased.IdToToken(Uncased.VocabSize));
    }

    [Fact]
    public void BasicTokenizeLowersStripsAndSplitsPunctuation()
    {
        Assert.Equal(new[] { "hello", ",", "world", "!", "naive", "cafe", "'", "s" },
            Uncased.BasicTokenize("Hello, WORLD! naïve Cafe\u0301's"));
    }

    [Fact]
    public void WordPieceGreedyLongestMatch()
    {
        Assert.Equal(new[] { "un", "##aff", "##able" }, Uncased.Tokenize("unaffable"));
        Assert.Equal(new[] { "hello", "##a" }, Uncased.Tokenize("helloa"));
    }

    [Fact]
    public void WordThatCannotBeDecomposedIsOneUnk()
    {
        // "hello" matches but nothing in the vocab starts with "é" after the strip is off
        var cased = new BertTokenizer(SmallVocab.With(), new BertTokenizerOptions { LowerCase = false });
        Assert.Equal(new[] { "[UNK]" }, cased.Tokenize("helloé"));
        Assert.Equal(new[] { "[UNK]", "world" }, cased.Tokenize("Hello world")); // 'H' is not in the vocab
    }

    [Fact]
    public void MaxInputCharsPerWordCountsCodePoints()
    {
        Assert.Equal(100, Uncased.Tokenize(new string('a', 100)).Count);
        Assert.Equal(new[] { "[UNK]" }, Uncased.Tokenize(new string('a', 101)));
        var small = new BertTokenizer(SmallVocab.With(), new BertTokenizerOptions { MaxInputCharsPerWord = 3 });
        Assert.Equal(new[] { "a", "##b", "##c" }, small.Tokenize("abc"));
        Assert.Equal(new[] { "[UNK]" }, small.Tokenize("abcd"));
    }

    [Fact]
    public void SpecialTokensAreRecognisedInRawTextOnlyWithExactCase()
    {
        Assert.Equal(new[] { "the", "lazy", "[MASK]", "." }, Uncased.Tokenize("the lazy [MASK]."));
        Assert.Equal(new[] { "[", "m", "##a", "##s", "##k", "]" }, Uncased.Tokenize("[mask]"));
        Assert.Equal(new[] { "a", "[SEP]", "b", "[CLS]" }, Uncased.Tokenize("a[SEP]b[CLS]"));
        Assert.Equal(new[] { "[", "[MASK]", "]" }, Uncased.Tokenize("[[MASK]]"));
    }

    [Fact]
    public void ChunkGluedIntoASpecialTokenByDeletedCharactersStaysWhole()
    {
        // HF: the basic tokenizer's never_split check sees "[MASK]" after _clean_text removed U+200B
        var cased = new BertTokenizer(SmallVocab.With(), new BertTokenizerOptions { LowerCase = false });
        Assert.Equal(new[] { "[MASK]" }, cased.Tokenize("[MA\u200bSK]"));
        Assert.Equal(new[] { "[", "m", "##a", "##s", "##k", "]" }, Uncased.Tokenize("[MA\u200bSK]"));
        // ... and checks again after accent stripping, before the punctuation split
        var casedStrip = new BertTokenizer(SmallVocab.With(), new BertTokenizerOptions { LowerCase = false, StripAccents = true });
        Assert.Equal(new[] { "[MASK]" }, casedStrip.Tokenize("[MASK]\u0301"));
        Assert.Equal(new[] { "[MASK]", "[MASK]" }, casedStrip.Tokenize("[MASK][MASK]\u0301"));
    }

    [Fact]
    public void CleanTextDeletesControlAndFormatCharactersAndSplitsOnWhitespace()
    {
        Assert.Equal(new[] { "hello", "world" }, Uncased.Tokenize("hel\u0000lo\u200b\tw\u00adorld\uFFFD"));
        Assert.Equal(new[] { "hello", "world" }, Uncased.Tokenize("hello\u00a0world"));
        Assert.Equal(new[] { "hello", "world" }, Uncased.Tokenize("hello\u2028world")); // Python's str.split splits on U+2028
        Assert.Equal(new[] { "hello", "world" }, Uncased.Tokenize("hello\u000bworld".Replace("\u000b", " ")));
        Assert.Equal(new[] { "helloworld" }.SelectMany(w => Uncased.Tokenize(w)), Uncased.Tokenize("hello\u000bworld")); // \v is Cc: deleted
        Assert.Empty(Uncased.Tokenize(""));
        Assert.Empty(Uncased.Tokenize(" \t\n\u3000\u200b"));
    }

    [Fact]
    public void ChineseCharactersAreSplitUnlessDisabled()
    {
        Assert.Equal(new[] { "a", "中", "文", "b" }, Uncased.Tokenize("a中文b"));
        var noCjk = new BertTokenizer(SmallVocab.With("中", "文", "中文", "##文"), new BertTokenizerOptions { TokenizeChineseChars = false });
        Assert.Equal(new[] { "[UNK]" }, noCjk.Tokenize("a中文b"));
        Assert.Equal(new[] { "中文" }, noCjk.Tokenize("中文"));
    }

    [Fact]
    public void AccentOptionsFollowHf()
    {
        var extra = SmallVocab.With("café", "Café", "Cafe", "CAFE");
        // lower-casing on, strip_accents unset: strip
        Assert.Equal(new[] { "cafe" }, new BertTokenizer(extra).Tokenize("CAFÉ"));
        // lower-casing on, strip_accents false: keep (NFC)
        var keep = new BertTokenizer(extra, new BertTokenizerOptions { StripAccents = false });
        Assert.Equal(new[] { "café" }, keep.Tokenize("CAFÉ"));
        Assert.Equal(new[] { "café" }, keep.Tokenize("CAFE\u0301"));
        // cased, strip_accents unset: keep, NFC composes the decomposed form
        var cased = new BertTokenizer(extra, new BertTokenizerOptions { LowerCase = false });
        Assert.Equal(new[] { "Café" }, cased.Tokenize("Cafe\u0301"));
        // cased, strip_accents true
        var casedStrip = new BertTokenizer(extra, new BertTokenizerOptions { LowerCase = false, StripAccents = true });
        Assert.Equal(new[] { "Cafe" }, casedStrip.Tokenize("Café"));
    }

    [Fact]
    public void LowerCasingFollowsPython()
    {
        // Python: "İ".lower() == "i\u0307"; the dot is a combining mark, stripped with accents on
        Assert.Equal(new[] { "i" }, Uncased.Tokenize("İ"));
        var keep = new BertTokenizer(SmallVocab.With("##\u0307"), new BertTokenizerOptions { StripAccents = false });
        Assert.Equal(new[] { "i", "##\u0307" }, keep.Tokenize("İ"));
        // final sigma is not applied (HF lower-cases character by character first)
        var greek = new BertTokenizer(SmallVocab.With("σ", "##σ", "ο", "##ο"), new BertTokenizerOptions());
        Assert.Equal(new[] { "ο", "##σ" }, greek.Tokenize("ΟΣ"));
        // supplementary-plane letters are lower-cased too (Deseret)
        var deseret = new BertTokenizer(SmallVocab.With("\U00010428"));
        Assert.Equal(new[] { "\U00010428" }, deseret.Tokenize("\U00010400"));
    }

    [Fact]
    public void PunctuationIsHfDefinition()
    {
        // ASCII symbols $ + < = > ^ ` | ~ count as punctuation; Unicode symbols (Sm, So, Sc) do not
        Assert.Equal(new[] { "$", "a", "+", "b", "^", "`", "|", "~" }, Uncased.Tokenize("$a+b^`|~"));
        Assert.Equal(new[] { "[UNK]" }, Uncased.Tokenize("a≤b"));
        Assert.Equal(new[] { "a", "[UNK]", "b" }, Uncased.Tokenize("a—b")); // em dash is Pd
        Assert.Equal(new[] { "a", "_", "b" }, Uncased.Tokenize("a_b"));
    }

    [Fact]
    public void EncodeWordsMapsTokensToWords()
    {
        var enc = Uncased.EncodeWords(new[] { "Hello", "unaffable", "\u200b", "world!" });
        Assert.Equal(new[] { "[CLS]", "hello", "un", "##aff", "##able", "world", "!", "[SEP]" }, enc.Tokens);
        Assert.Equal(new[] { -1, 0, 1, 1, 1, 3, 3, -1 }, enc.WordIds);
        Assert.Equal(new int[8], enc.TokenTypeIds);

        var cut = Uncased.EncodeWords(new[] { "Hello", "unaffable", "world" }, maxLength: 4);
        Assert.Equal(new[] { "[CLS]", "hello", "un", "[SEP]" }, cut.Tokens);
        Assert.Equal(new[] { -1, 0, 1, -1 }, cut.WordIds);
    }

    [Fact]
    public void DecodeJoinsPiecesLikeHf()
    {
        var ids = Uncased.Encode("[CLS] hello, unaffable world ! [SEP]");
        Assert.Equal("hello, unaffable world!", Uncased.Decode(ids));
        Assert.Equal("[CLS] hello, unaffable world! [SEP]", Uncased.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void TokenizerIsThreadSafe()
    {
        string text = string.Join(" ", Enumerable.Repeat("Hello, naïve unaffable 中文 world! [MASK]", 200));
        var expected = Uncased.Encode(text);
        Parallel.For(0, 16, _ => Assert.Equal(expected, Uncased.Encode(text)));
    }
}
