using System.Globalization;
using System.Text;
using BertSharp.Tokenization;

namespace BertSharp.Tests.Tokenization;

/// <summary>
/// TokenizeWithOffsets: every token's span in the original text, normalized the way HF normalizes (delete control
/// and format characters, lower-case, NFD, drop Mn), must read as the token without "##"; [UNK] covers one whole
/// word; spans do not overlap; every character that yields text is covered by some token.
/// </summary>
public class OffsetTests
{
    private static readonly Lazy<BertTokenizer> Tiny = new(() => BertTokenizer.FromFolder(TokenizerTestData.TinyBertDir));
    private static readonly Lazy<BertTokenizer> Base = new(() => BertTokenizer.FromVocabFile(TokenizerTestData.BertBaseUncasedVocab!));

    public static TheoryData<string> Texts() => new()
    {
        "Héllo wörld naïve café résumé Ångström façade jalapeño",
        "cafe\u0301 nai\u0308ve E\u0301COLE",
        "  leading and trailing spaces  ",
        "tab\there new\nline  multiple   spaces\u00a0nbsp\u200bzero\u3000ideo-space\u0000nul\u0007bell",
        "ab\u0000cd\u200bef\uFFFDgh\u0085ij\u00adkl",
        "中文BERT测试,English混合。 我爱北京",
        "Hello, world!!! (test) [x] {y} ... --- 'single' \"double\" a-b_c e.g. U.S.A.",
        "the lazy [MASK]. [mask] is lowercase [CLS][SEP]x",
        "I ❤️ NLP 😀👍🏽 🇺🇸 ☃ 𠀀x",
        "x² + y³ ≤ z — an em-dash – en-dash … ellipsis ½",
        " \u0301abc \u0301 a\u0301\u0301b",
        "こんにちは世界 안녕하세요 Привет Γειά",
        "line\u2028separator para\u2029graph",
        "pneumonoultramicroscopicsilicovolcanoconiosis " + new string('b', 101),
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void TinyVocabSpansMatchText(string text) => AssertSpansMatchText(Tiny.Value, text);

    [DataTheory("vocab/bert-base-uncased/vocab.txt")]
    [MemberData(nameof(Texts))]
    public void BaseVocabSpansMatchText(string text) => AssertSpansMatchText(Base.Value, text);

    [Fact]
    public void AccentedAndDecomposedSpans()
    {
        var tok = Tiny.Value;
        //                  0123456789012345
        string text = "Café cafe\u0301!";
        var spans = tok.TokenizeWithOffsets(text);
        Assert.Equal(tok.Tokenize(text), spans.Select(s => s.Token));
        // "café" -> caf + ##e or cafe: whatever the pieces, the word covers [0,4) and [5,10) (the mark included)
        var first = spans.Where(s => s.End <= 4).ToList();
        Assert.Equal(0, first[0].Start);
        Assert.Equal(4, first[^1].End);
        var second = spans.Where(s => s.Start >= 5 && s.End <= 10).ToList();
        Assert.Equal(5, second[0].Start);
        Assert.Equal(10, second[^1].End); // includes the combining acute at index 9
        Assert.Equal("!", spans[^1].Token);
        Assert.Equal((10, 11), (spans[^1].Start, spans[^1].End));
    }

    [Fact]
    public void ControlCharactersInsideAWordAreSkippedNotMapped()
    {
        var tok = Tiny.Value;
        string text = "ca\u200bt\u0000s";
        var spans = tok.TokenizeWithOffsets(text);
        Assert.Equal(tok.Tokenize("cats"), spans.Select(s => s.Token));
        Assert.Equal(0, spans[0].Start);
        Assert.Equal(text.Length, spans[^1].End);
    }

    [Fact]
    public void CjkAndSurrogatePairs()
    {
        var tok = Tiny.Value;
        string text = "a中𠀀b"; // U+20000 is a CJK extension B ideograph: two UTF-16 units
        var spans = tok.TokenizeWithOffsets(text);
        Assert.Equal(new[] { (0, 1), (1, 2), (2, 4), (4, 5) }, spans.Select(s => (s.Start, s.End)));
        Assert.Equal("[UNK]", spans[1].Token);
        Assert.Equal("[UNK]", spans[2].Token);
    }

    [Fact]
    public void SpecialTokensKeepTheirSpan()
    {
        var tok = Tiny.Value;
        string text = "lazy [MASK].";
        var spans = tok.TokenizeWithOffsets(text);
        Assert.Equal(new[] { "lazy", "[MASK]", "." }, spans.Select(s => s.Token));
        Assert.Equal((5, 11), (spans[1].Start, spans[1].End));
        Assert.Equal((11, 12), (spans[2].Start, spans[2].End));
    }

    [Fact]
    public void AnswerSpanMapsBackExactly()
    {
        // extractive QA: find the tokens inside an answer's character span and map them back to the same text
        var tok = Tiny.Value;
        string context = "The  Café\u200b opened in 1999, in Paris.";
        int answerStart = context.IndexOf("Café", StringComparison.Ordinal), answerEnd = answerStart + "Café".Length;
        var spans = tok.TokenizeWithOffsets(context);
        var inside = spans.Where(s => s.Start >= answerStart && s.End <= answerEnd).ToList();
        Assert.NotEmpty(inside);
        Assert.Equal("Café", context[inside[0].Start..inside[^1].End]);
    }

    [Fact]
    public void NfcWithoutAccentStrippingMapsComposedCharacters()
    {
        var vocab = SmallVocab.With("café", "Café", "e", "##e", "≠", "i", "##\u0307");
        var tok = new BertTokenizer(vocab, new BertTokenizerOptions { LowerCase = false });
        string text = "Cafe\u0301 x=\u0338y";
        var spans = tok.TokenizeWithOffsets(text);
        Assert.Equal("Café", spans[0].Token);
        Assert.Equal((0, 5), (spans[0].Start, spans[0].End));
        // "=\u0338" composes to U+2260 under NFC, which is not punctuation: "x≠y" is one word
        Assert.Equal(tok.Tokenize("x≠y"), spans.Skip(1).Select(s => s.Token));
        Assert.Equal((6, 10), (spans[1].Start, spans[^1].End));
    }

    /// <summary>The offset invariants, usable for any tokenizer that lower-cases and strips accents.</summary>
    internal static void AssertSpansMatchText(BertTokenizer tok, string text)
    {
        var spans = tok.TokenizeWithOffsets(text);
        Assert.Equal(tok.Tokenize(text), spans.Select(s => s.Token));
        int previousEnd = 0;
        var covered = new bool[text.Length];
        // Tokens with the same span are pieces of one original character (a Hangul syllable decomposes into
        // jamo that WordPiece may split): they are checked together.
        for (int g = 0; g < spans.Count;)
        {
            var s = spans[g];
            int h = g + 1;
            while (h < spans.Count && spans[h].Start == s.Start && spans[h].End == s.End) h++;
            var group = spans.Skip(g).Take(h - g).ToList();
            g = h;

            Assert.True(s.Start >= previousEnd, $"span {s} overlaps the previous token in \"{text}\"");
            Assert.True(s.End > s.Start && s.End <= text.Length, $"bad span {s}");
            previousEnd = s.End;
            for (int i = s.Start; i < s.End; i++) covered[i] = true;
            string original = text[s.Start..s.End];
            if (group.Count == 1 && tok.IsSpecialId(s.Id) && original == s.Token) continue; // a special token written in the text
            string normalized = HfNormalize(original);
            if (group.Any(t => t.Id == tok.UnkId))
            {
                Assert.True(group.Count == 1, $"[UNK] shares its span {s} with another token");
                Assert.False(string.IsNullOrEmpty(normalized), $"[UNK] {s} covers no text");
                Assert.DoesNotContain(normalized, char.IsWhiteSpace);
                continue;
            }
            string expected = string.Concat(group.Select(t => t.Token.StartsWith("##", StringComparison.Ordinal) ? t.Token[2..] : t.Token));
            Assert.True(expected == normalized, $"token '{s.Token}' {s.Start}..{s.End} reads '{normalized}' in \"{text}\"");
        }
        // every character that produces text belongs to a token
        for (int i = 0; i < text.Length; i++)
        {
            if (covered[i]) continue;
            int len = char.IsSurrogatePair(text, i) ? 2 : 1;
            string ch = text.Substring(i, len);
            Assert.True(HfNormalize(ch).Trim().Length == 0, $"character U+{char.ConvertToUtf32(text, i):X4} at {i} belongs to no token in \"{text}\"");
            i += len - 1;
        }
    }

    /// <summary>An independent, slow statement of HF's normalization of a piece of text (uncased model).</summary>
    internal static string HfNormalize(string s)
    {
        var cleaned = new StringBuilder();
        foreach (Rune r in s.EnumerateRunes())
        {
            var cat = Rune.GetUnicodeCategory(r);
            bool control = r.Value is not ('\t' or '\n' or '\r') && cat is UnicodeCategory.Control or UnicodeCategory.Format
                or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;
            if (r.Value == 0 || r.Value == 0xFFFD || control) continue;
            cleaned.Append(Rune.ToLowerInvariant(r).ToString());
        }
        var stripped = new StringBuilder();
        foreach (Rune r in cleaned.ToString().Normalize(NormalizationForm.FormD).EnumerateRunes())
            if (Rune.GetUnicodeCategory(r) != UnicodeCategory.NonSpacingMark) stripped.Append(r.ToString());
        return stripped.ToString();
    }
}
