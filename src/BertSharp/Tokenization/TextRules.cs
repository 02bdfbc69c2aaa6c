using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace BertSharp.Tokenization;

/// <summary>
/// Character rules of HuggingFace's slow BertTokenizer (tokenization_bert.py, transformers 4.30), by Unicode code point:
/// _clean_text (drop NUL, U+FFFD and category C* except \t \n \r; whitespace = space, \t, \n, \r or Zs),
/// _is_punctuation (ASCII 33-47, 58-64, 91-96, 123-126, or category P*), _is_chinese_char (the CJK ideograph
/// blocks), Python's per-character str.lower(), and _run_strip_accents (NFD, drop Mn).
/// Character categories come from .NET's Unicode tables, which may be newer than the Python that HF ran on:
/// a code point unassigned there (category Cn, deleted) but assigned here is kept (docs/TOKENIZER.md lists the
/// differences). U+0130 is the one lower-case mapping handled specially, below.
/// </summary>
internal static class TextRules
{
    // ASCII classes for the first pass.
    internal const byte Keep = 0, Upper = 1, Space = 2, Delete = 3;
    internal static readonly byte[] AsciiClass = BuildAsciiClass();
    internal static readonly bool[] AsciiPunct = BuildAsciiPunct();

    private static byte[] BuildAsciiClass()
    {
        var t = new byte[128];
        for (int c = 0; c < 128; c++)
            t[c] = c is ' ' or '\t' or '\n' or '\r' ? Space
                 : c < 32 || c == 127 ? Delete
                 : c is >= 'A' and <= 'Z' ? Upper
                 : Keep;
        return t;
    }

    private static bool[] BuildAsciiPunct()
    {
        var t = new bool[128];
        for (int c = 0; c < 128; c++)
            t[c] = c is (>= 33 and <= 47) or (>= 58 and <= 64) or (>= 91 and <= 96) or (>= 123 and <= 126);
        return t;
    }

    /// <summary>HF _is_punctuation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsPunctuation(int cp) => cp < 128 ? AsciiPunct[cp] : IsPunctuationCategory(CharUnicodeInfo.GetUnicodeCategory(cp));

    internal static bool IsPunctuationCategory(UnicodeCategory cat) => cat is UnicodeCategory.ConnectorPunctuation
        or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
        or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;

    /// <summary>What the first pass does with a non-ASCII code point.</summary>
    internal enum NonAscii : byte { Keep, Space, Delete }

    /// <summary>
    /// _clean_text for a non-ASCII code point: Zs is whitespace; U+FFFD and C* (Cc, Cf, Cn, Co, Cs) are deleted.
    /// Zl/Zp (U+2028, U+2029) are not whitespace for _clean_text but Python's str.split() splits on them, so
    /// they separate words too.
    /// </summary>
    internal static NonAscii Classify(int cp, UnicodeCategory cat)
    {
        switch (cat)
        {
            case UnicodeCategory.SpaceSeparator:
            case UnicodeCategory.LineSeparator:
            case UnicodeCategory.ParagraphSeparator:
                return NonAscii.Space;
            case UnicodeCategory.Control:
            case UnicodeCategory.Format:
            case UnicodeCategory.OtherNotAssigned:
            case UnicodeCategory.PrivateUse:
            case UnicodeCategory.Surrogate:
                return NonAscii.Delete;
            default:
                return cp == 0xFFFD ? NonAscii.Delete : NonAscii.Keep;
        }
    }

    /// <summary>HF _is_chinese_char: the CJK Unified Ideographs blocks and extensions A-E, compatibility ideographs.</summary>
    internal static bool IsCjk(int cp) =>
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
        || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF)
        || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);

    /// <summary>
    /// Python's str.lower() of one code point, written into dst (1 or 2 UTF-16 units, or 3 for U+0130).
    /// Python applies full case mapping; the only unconditional multi-character lower-case mapping is
    /// U+0130 (İ) -> "i\u0307". Final-sigma context never applies: HF lower-cases character by character first.
    /// </summary>
    internal static int LowerInto(int cp, Span<char> dst)
    {
        if (cp == 0x130) { dst[0] = 'i'; dst[1] = '\u0307'; return 2; }
        if (cp < 0x10000) { dst[0] = char.ToLowerInvariant((char)cp); return 1; }
        return Rune.ToLowerInvariant(new Rune(cp)).EncodeToUtf16(dst);
    }

    private static readonly string?[] s_stripBmp = new string?[0x10000];
    private static readonly ConcurrentDictionary<int, string> s_stripSupplementary = new();

    /// <summary>_run_strip_accents of one code point: NFD, then drop category Mn. Cached.</summary>
    internal static string StripAccents(int cp)
    {
        if (cp < 0x10000)
            return s_stripBmp[cp] ??= ComputeStrip(cp);
        return s_stripSupplementary.GetOrAdd(cp, ComputeStrip);
    }

    private static string ComputeStrip(int cp)
    {
        string s = char.ConvertFromUtf32(cp);
        string d;
        try { d = s.Normalize(NormalizationForm.FormD); }
        catch (ArgumentException) { d = s; }
        var sb = new StringBuilder(d.Length);
        foreach (Rune r in d.EnumerateRunes())
            if (Rune.GetUnicodeCategory(r) != UnicodeCategory.NonSpacingMark)
                sb.Append(r.ToString());
        return sb.ToString();
    }

    /// <summary>
    /// Whether NFC composition may start a new unit at this code point: not a combining mark (Mn, Mc, Me) and not a
    /// conjoining Hangul vowel/trailing jamo. Composition never reaches back over such a starter, so NFC can be
    /// applied unit by unit, which keeps each composed character's span in the original text.
    /// </summary>
    internal static bool IsNfcUnitStart(int cp)
    {
        if (cp < 0x300) return true;
        if ((cp >= 0x1160 && cp <= 0x11FF) || (cp >= 0xD7B0 && cp <= 0xD7FF)) return false;
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is not (UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark);
    }
}
