using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace BertSharp.Tokenization;

// The tokenization engine: one pass over the text, no per-character allocations.
//
//   1. split out special tokens written in the raw text ([MASK] etc., exact case; HF's added-tokens trie);
//   2. _clean_text + whitespace split + CJK isolation + lower-casing, character by character, into a chunk
//      buffer that remembers each character's [start, end) in the original text;
//   3. per chunk: accent stripping (NFD, drop Mn) or, without stripping, NFC (HF normalizes to NFC first);
//   4. punctuation split into words;
//   5. greedy longest-match-first WordPiece on each word, looked up by span in the vocabulary dictionary.
//
// Output goes to a struct sink, so the same code serves ids, strings, offsets and basic words.
public sealed partial class BertTokenizer
{
    internal interface ISink
    {
        /// <summary>True: stop after basic tokenization and receive words through <see cref="Word"/>.</summary>
        bool WordsOnly { get; }
        void Token(int id, int start, int end);
        void Word(ReadOnlySpan<char> word, int start, int end);
    }

    private sealed class Scratch
    {
        [ThreadStatic] private static Scratch? t_instance;
        public static Scratch Get() => t_instance ??= new Scratch();

        public char[] Chunk = new char[256];
        public int[] ChunkStart = new int[256], ChunkEnd = new int[256];
        public char[] Norm = new char[256];
        public int[] NormStart = new int[256], NormEnd = new int[256];
        public char[] Wp = new char[256];
        public int[] PieceId = new int[64], PieceFrom = new int[64], PieceTo = new int[64];

        public void GrowChunk(int need)
        {
            int size = Math.Max(need, Chunk.Length * 2);
            Array.Resize(ref Chunk, size);
            Array.Resize(ref ChunkStart, size);
            Array.Resize(ref ChunkEnd, size);
        }

        public void GrowNorm(int need)
        {
            int size = Math.Max(need, Norm.Length * 2);
            Array.Resize(ref Norm, size);
            Array.Resize(ref NormStart, size);
            Array.Resize(ref NormEnd, size);
        }

        public void GrowPieces(int need)
        {
            int size = Math.Max(need, PieceId.Length * 2);
            Array.Resize(ref PieceId, size);
            Array.Resize(ref PieceFrom, size);
            Array.Resize(ref PieceTo, size);
        }
    }

    internal void Run<TSink>(ReadOnlySpan<char> text, ref TSink sink) where TSink : struct, ISink
    {
        var s = Scratch.Get();
        int len = 0;          // chars in the current chunk
        bool ascii = true;    // chunk is pure ASCII (no normalization needed)
        int n = text.Length;
        int i = 0;
        Span<char> lower = stackalloc char[4];
        while (i < n)
        {
            char c = text[i];
            if (c < 0x80)
            {
                switch (TextRules.AsciiClass[c])
                {
                    case TextRules.Keep:
                        if (_specialStartAscii[c] && TryMatchSpecial(text, i, out int sid, out int slen))
                        {
                            if (len > 0) { FlushChunk(s, len, ascii, ref sink); len = 0; ascii = true; }
                            EmitSpecial(sid, i, i + slen, ref sink);
                            i += slen;
                            continue;
                        }
                        if (len == s.Chunk.Length) s.GrowChunk(len + 1);
                        s.Chunk[len] = c; s.ChunkStart[len] = i; s.ChunkEnd[len] = i + 1; len++;
                        break;
                    case TextRules.Upper:
                        if (len == s.Chunk.Length) s.GrowChunk(len + 1);
                        s.Chunk[len] = _lowerCase ? (char)(c | 0x20) : c; s.ChunkStart[len] = i; s.ChunkEnd[len] = i + 1; len++;
                        break;
                    case TextRules.Space:
                        if (len > 0) { FlushChunk(s, len, ascii, ref sink); len = 0; ascii = true; }
                        break;
                    default: // control character: deleted
                        break;
                }
                i++;
                continue;
            }

            if (_specialStartOther is not null && _specialStartOther.Contains(c) && TryMatchSpecial(text, i, out int sid2, out int slen2))
            {
                if (len > 0) { FlushChunk(s, len, ascii, ref sink); len = 0; ascii = true; }
                EmitSpecial(sid2, i, i + slen2, ref sink);
                i += slen2;
                continue;
            }

            int cp, units;
            if (char.IsSurrogate(c))
            {
                if (char.IsHighSurrogate(c) && i + 1 < n && char.IsLowSurrogate(text[i + 1]))
                {
                    cp = char.ConvertToUtf32(c, text[i + 1]);
                    units = 2;
                }
                else { i++; continue; } // lone surrogate: category Cs, deleted
            }
            else { cp = c; units = 1; }

            var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
            switch (TextRules.Classify(cp, cat))
            {
                case TextRules.NonAscii.Space:
                    if (len > 0) { FlushChunk(s, len, ascii, ref sink); len = 0; ascii = true; }
                    break;
                case TextRules.NonAscii.Delete:
                    break;
                default:
                {
                    bool cjk = _tokenizeChineseChars && TextRules.IsCjk(cp);
                    if (cjk && len > 0) { FlushChunk(s, len, ascii, ref sink); len = 0; ascii = true; }
                    int m;
                    if (_lowerCase) m = TextRules.LowerInto(cp, lower);
                    else { text.Slice(i, units).CopyTo(lower); m = units; }
                    if (len + m > s.Chunk.Length) s.GrowChunk(len + m);
                    for (int k = 0; k < m; k++)
                    {
                        s.Chunk[len] = lower[k]; s.ChunkStart[len] = i; s.ChunkEnd[len] = i + units; len++;
                    }
                    ascii = false;
                    if (cjk) { FlushChunk(s, len, ascii, ref sink); len = 0; ascii = true; }
                    break;
                }
            }
            i += units;
        }
        if (len > 0) FlushChunk(s, len, ascii, ref sink);
    }

    private bool TryMatchSpecial(ReadOnlySpan<char> text, int i, out int id, out int length)
    {
        var rest = text.Slice(i);
        foreach (var (token, tid) in _specialsLongestFirst)
        {
            if (rest.StartsWith(token, StringComparison.Ordinal))
            {
                id = tid; length = token.Length;
                return true;
            }
        }
        id = 0; length = 0;
        return false;
    }

    private void EmitSpecial<TSink>(int id, int start, int end, ref TSink sink) where TSink : struct, ISink
    {
        if (sink.WordsOnly) sink.Word(_vocab[id], start, end);
        else sink.Token(id, start, end);
    }

    /// <summary>One whitespace-delimited chunk of cleaned, lower-cased text: normalize, split punctuation, WordPiece.</summary>
    private void FlushChunk<TSink>(Scratch s, int len, bool ascii, ref TSink sink) where TSink : struct, ISink
    {
        // HF's basic tokenizer keeps a chunk that equals a special token whole, checked on the NFC text before
        // lower-casing/stripping and again before the punctuation split. Only reachable when deleted characters
        // glued it together or stripped marks followed it, e.g. "[MA\u200bSK]" or "[MASK]\u0301" (cased).
        if (len <= _maxSpecialLength * 3 && TryNeverSplitRaw(s, len, ascii, out int sid))
        {
            EmitSpecial(sid, s.ChunkStart[0], s.ChunkEnd[len - 1], ref sink);
            return;
        }

        if (ascii)
        {
            SplitPunctuation(s, s.Chunk, s.ChunkStart, s.ChunkEnd, len, ref sink);
            return;
        }

        int outLen = _stripAccents ? StripAccentsInto(s, len) : NfcInto(s, len);
        if (outLen == 0) return;
        if (outLen <= _maxSpecialLength && TryMatchWhole(s.Norm.AsSpan(0, outLen), out sid))
        {
            EmitSpecial(sid, s.NormStart[0], s.NormEnd[outLen - 1], ref sink);
            return;
        }
        SplitPunctuation(s, s.Norm, s.NormStart, s.NormEnd, outLen, ref sink);
    }

    private bool TryMatchWhole(ReadOnlySpan<char> chunk, out int id)
    {
        foreach (var (token, tid) in _specialsLongestFirst)
            if (chunk.SequenceEqual(token)) { id = tid; return true; }
        id = 0;
        return false;
    }

    private bool TryNeverSplitRaw(Scratch s, int len, bool ascii, out int id)
    {
        id = 0;
        var chunk = s.Chunk.AsSpan(0, len);
        if (ascii) return len <= _maxSpecialLength && TryMatchWhole(chunk, out id);
        return TryMatchWhole(NormalizeSafe(new string(chunk), NormalizationForm.FormC), out id);
    }

    private static string NormalizeSafe(string s, NormalizationForm form)
    {
        try { return s.Normalize(form); }
        catch (ArgumentException) { return s; } // cannot happen after cleaning (no lone surrogates); be safe
    }

    /// <summary>NFD + drop Mn per code point. A dropped mark extends the previous character's span, so "e\u0301" maps to both.</summary>
    private static int StripAccentsInto(Scratch s, int len)
    {
        if (s.Norm.Length < len * 2) s.GrowNorm(len * 2);
        int o = 0;
        var chunk = s.Chunk;
        for (int j = 0; j < len;)
        {
            char c = chunk[j];
            int start = s.ChunkStart[j], end = s.ChunkEnd[j];
            if (c < 0x80)
            {
                if (o == s.Norm.Length) s.GrowNorm(o + 1);
                s.Norm[o] = c; s.NormStart[o] = start; s.NormEnd[o] = end; o++;
                j++;
                continue;
            }
            int cp = c, units = 1;
            if (char.IsHighSurrogate(c) && j + 1 < len && char.IsLowSurrogate(chunk[j + 1]))
            {
                cp = char.ConvertToUtf32(c, chunk[j + 1]);
                units = 2;
                end = Math.Max(end, s.ChunkEnd[j + 1]);
            }
            string d = TextRules.StripAccents(cp);
            if (d.Length == 0)
            {
                if (o > 0) s.NormEnd[o - 1] = Math.Max(s.NormEnd[o - 1], end);
            }
            else
            {
                if (o + d.Length > s.Norm.Length) s.GrowNorm(o + d.Length);
                for (int k = 0; k < d.Length; k++)
                {
                    s.Norm[o] = d[k]; s.NormStart[o] = start; s.NormEnd[o] = end; o++;
                }
            }
            j += units;
        }
        return o;
    }

    /// <summary>
    /// NFC of the chunk (HF normalizes the whole text to NFC before splitting). Done unit by unit (a starter
    /// and its combining marks) so that a composed character's span covers exactly the characters it came from.
    /// </summary>
    private static int NfcInto(Scratch s, int len)
    {
        var chunk = s.Chunk;
        string str = new string(chunk, 0, len);
        if (s.Norm.Length < len * 3 + 4) s.GrowNorm(len * 3 + 4);
        if (str.IsNormalized(NormalizationForm.FormC))
        {
            Array.Copy(chunk, s.Norm, len);
            Array.Copy(s.ChunkStart, s.NormStart, len);
            Array.Copy(s.ChunkEnd, s.NormEnd, len);
            return len;
        }

        string whole = NormalizeSafe(str, NormalizationForm.FormC);
        if (s.Norm.Length < whole.Length) s.GrowNorm(whole.Length);
        int o = 0;
        int unitStart = 0;
        for (int j = 0; j <= len;)
        {
            int cp = 0, units = 1;
            if (j < len)
            {
                cp = chunk[j];
                if (char.IsHighSurrogate(chunk[j]) && j + 1 < len && char.IsLowSurrogate(chunk[j + 1]))
                {
                    cp = char.ConvertToUtf32(chunk[j], chunk[j + 1]);
                    units = 2;
                }
            }
            if (j == len || (j > unitStart && TextRules.IsNfcUnitStart(cp)))
            {
                string unit = str.Substring(unitStart, j - unitStart);
                string composed = NormalizeSafe(unit, NormalizationForm.FormC);
                if (o + composed.Length > s.Norm.Length) s.GrowNorm(o + composed.Length);
                if (composed == unit)
                {
                    Array.Copy(chunk, unitStart, s.Norm, o, unit.Length);
                    Array.Copy(s.ChunkStart, unitStart, s.NormStart, o, unit.Length);
                    Array.Copy(s.ChunkEnd, unitStart, s.NormEnd, o, unit.Length);
                    o += unit.Length;
                }
                else
                {
                    int start = s.ChunkStart[unitStart], end = s.ChunkEnd[j - 1];
                    foreach (char ch in composed)
                    {
                        s.Norm[o] = ch; s.NormStart[o] = start; s.NormEnd[o] = end; o++;
                    }
                }
                unitStart = j;
                if (j == len) break;
            }
            j += units;
        }

        if (!s.Norm.AsSpan(0, o).SequenceEqual(whole))
        {
            // Composition crossed a unit boundary (not expected for real text): keep HF's characters, with
            // every one of them spanning the whole chunk.
            int start = s.ChunkStart[0], end = s.ChunkEnd[len - 1];
            for (o = 0; o < whole.Length; o++)
            {
                s.Norm[o] = whole[o]; s.NormStart[o] = start; s.NormEnd[o] = end;
            }
        }
        return o;
    }

    /// <summary>_run_split_on_punc: every punctuation character becomes its own word.</summary>
    private void SplitPunctuation<TSink>(Scratch s, char[] buf, int[] starts, int[] ends, int len, ref TSink sink)
        where TSink : struct, ISink
    {
        int wordStart = 0;
        int k = 0;
        while (k < len)
        {
            char ch = buf[k];
            int units = 1;
            bool punct;
            if (ch < 0x80) punct = TextRules.AsciiPunct[ch];
            else if (char.IsHighSurrogate(ch) && k + 1 < len && char.IsLowSurrogate(buf[k + 1]))
            {
                units = 2;
                punct = TextRules.IsPunctuationCategory(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(ch, buf[k + 1])));
            }
            else punct = TextRules.IsPunctuationCategory(CharUnicodeInfo.GetUnicodeCategory(ch));

            if (punct)
            {
                if (k > wordStart) Word(s, buf, starts, ends, wordStart, k, ref sink);
                Word(s, buf, starts, ends, k, k + units, ref sink);
                wordStart = k + units;
            }
            k += units;
        }
        if (len > wordStart) Word(s, buf, starts, ends, wordStart, len, ref sink);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Word<TSink>(Scratch s, char[] buf, int[] starts, int[] ends, int a, int b, ref TSink sink)
        where TSink : struct, ISink
    {
        if (sink.WordsOnly) sink.Word(buf.AsSpan(a, b - a), starts[a], ends[b - 1]);
        else WordPiece(s, buf, starts, ends, a, b, ref sink);
    }

    /// <summary>Greedy longest-match-first WordPiece on buf[a, b); [UNK] for the whole word when it cannot be decomposed.</summary>
    private void WordPiece<TSink>(Scratch s, char[] buf, int[] starts, int[] ends, int a, int b, ref TSink sink)
        where TSink : struct, ISink
    {
        int n = b - a;
        var word = buf.AsSpan(a, n);
        if (n > _maxInputCharsPerWord && CountCodePoints(word) > _maxInputCharsPerWord)
        {
            sink.Token(UnkId, starts[a], ends[b - 1]);
            return;
        }
        if (n <= _maxTokenLength && _lookup.TryGetValue(word, out int whole))
        {
            sink.Token(whole, starts[a], ends[b - 1]);
            return;
        }

        // The word sits at wp[2..]: a continuation piece starting at p is looked up as wp[p, e+2) after writing
        // "##" into wp[p], wp[p+1], which hold characters of pieces already matched.
        if (s.Wp.Length < n + 2) Array.Resize(ref s.Wp, Math.Max(n + 2, s.Wp.Length * 2));
        var wp = s.Wp;
        word.CopyTo(wp.AsSpan(2));
        int pieces = 0;
        int p = 0;
        while (p < n)
        {
            int off;
            int limit;
            if (p == 0) { off = 2; limit = _maxTokenLength; }
            else { off = p; limit = _maxContinuationLength; wp[p] = '#'; wp[p + 1] = '#'; }
            int e = Math.Min(n, p + limit);
            int id = -1;
            for (; e > p; e--)
            {
                if (e < n && char.IsLowSurrogate(wp[e + 2])) continue; // never split a surrogate pair
                if (_lookup.TryGetValue(wp.AsSpan(off, e + 2 - off), out id)) break;
            }
            if (e == p)
            {
                sink.Token(UnkId, starts[a], ends[b - 1]);
                return;
            }
            if (pieces == s.PieceId.Length) s.GrowPieces(pieces + 1);
            s.PieceId[pieces] = id; s.PieceFrom[pieces] = p; s.PieceTo[pieces] = e; pieces++;
            p = e;
        }
        for (int k = 0; k < pieces; k++)
            sink.Token(s.PieceId[k], starts[a + s.PieceFrom[k]], ends[a + s.PieceTo[k] - 1]);
    }

    private static int CountCodePoints(ReadOnlySpan<char> span)
    {
        int count = span.Length;
        foreach (char c in span)
            if (char.IsLowSurrogate(c)) count--;
        return count;
    }

    // ---- sinks ----

    internal struct IdSink(List<int> ids) : ISink
    {
        public readonly bool WordsOnly => false;
        public readonly void Token(int id, int start, int end) => ids.Add(id);
        public readonly void Word(ReadOnlySpan<char> word, int start, int end) { }
    }

    internal struct StringSink(List<string> tokens, string[] vocab) : ISink
    {
        public readonly bool WordsOnly => false;
        public readonly void Token(int id, int start, int end) => tokens.Add(vocab[id]);
        public readonly void Word(ReadOnlySpan<char> word, int start, int end) { }
    }

    internal struct SpanSink(List<TokenSpan> spans, string[] vocab) : ISink
    {
        public readonly bool WordsOnly => false;
        public readonly void Token(int id, int start, int end) => spans.Add(new TokenSpan(vocab[id], id, start, end));
        public readonly void Word(ReadOnlySpan<char> word, int start, int end) { }
    }

    internal struct WordSink(List<string> words) : ISink
    {
        public readonly bool WordsOnly => true;
        public readonly void Token(int id, int start, int end) { }
        public readonly void Word(ReadOnlySpan<char> word, int start, int end) => words.Add(new string(word));
    }

    internal struct CountSink : ISink
    {
        public long Count;
        public readonly bool WordsOnly => false;
        public void Token(int id, int start, int end) => Count++;
        public readonly void Word(ReadOnlySpan<char> word, int start, int end) { }
    }
}
