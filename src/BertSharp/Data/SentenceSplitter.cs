using System.Buffers;

namespace BertSharp.Data;

/// <summary>
/// Splits a line of running text into sentences with a few rules, for pre-training documents (where a wrong
/// split costs little: it only moves a next-sentence boundary).
/// <para>A sentence ends after a run of <c>. ! ? …</c>, optionally followed by closing quotes or brackets, when
/// whitespace follows and then a sentence start: an upper-case (or uncased) letter, a digit, an opening quote,
/// an opening bracket before an upper-case letter or digit, or an unknown-word token (<c>&lt;unk&gt;</c>,
/// <c>[UNK]</c>). A single <c>.</c> does not end a sentence after a common abbreviation (Mr. Dr. etc. vs. …),
/// an abbreviation with inner dots whose parts are one or two letters (U.S. e.g. i.e. Ph.D. a.m.), a single
/// upper-case letter (an initial: J. R. R. Tolkien), <c>c.</c> <c>p.</c> <c>v.</c> (circa, page, versus), or
/// <c>No.</c>/<c>Nos.</c> before a number. Known misses, accepted: an abbreviation or initial that does end a
/// sentence (<c>in the U.S. The</c>, <c>vitamin C. It</c>) is not split.</para>
/// <para>WikiText's tokenized style, where every sentence-final period stands alone (<c>Sea . It</c>) and a
/// closing quote or bracket may be spaced off (<c>" lobster red . " The</c>), works too: a free-standing
/// period never counts as an abbreviation, and a spaced <c>"</c> or <c>)</c> after the period stays with the
/// sentence when it closes a quote or bracket opened before it in the text (quotes may span sentences).
/// Closers and spaces at the very end stay with the last sentence.</para>
/// Runs in one pass over the candidate punctuation marks (a vectorised search), no regex.
/// </summary>
public static class SentenceSplitter
{
    static readonly SearchValues<char> Terminators = SearchValues.Create(".!?\u2026");

    static readonly HashSet<string> Abbreviations = new(StringComparer.Ordinal)
    {
        // titles
        "Mr", "Mrs", "Ms", "Messrs", "Mme", "Mlle", "Dr", "Prof", "Sr", "Jr", "St", "Ste", "Rev", "Hon", "Gov",
        "Sen", "Rep", "Pres", "Gen", "Col", "Lt", "Capt", "Cpt", "Sgt", "Cpl", "Maj", "Adm", "Cmdr", "Brig", "Pvt",
        "Fr", "Sra", "Mt", "Ft",
        // latin and references
        "etc", "vs", "cf", "al", "approx", "ca", "viz", "esp", "Fig", "fig", "Figs", "figs", "Vol", "vol", "Vols",
        "vols", "pp", "Ed", "ed", "eds", "Ch", "ch", "Sec", "sec", "Eq", "eq", "Eqs", "Ref", "ref", "Refs",
        // companies and addresses
        "Inc", "Ltd", "Co", "Corp", "Bros", "Assn", "Dept", "Univ", "Ave", "Blvd", "Rd", "Sq", "Hwy",
        // months
        "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
    };

    /// <summary>Abbreviations that end no sentence only when a number follows (No. 5).</summary>
    static readonly HashSet<string> NumberAbbreviations = new(StringComparer.Ordinal) { "No", "no", "Nos", "nos", "Op", "op", "Art", "art" };

    /// <summary>Splits <paramref name="text"/> into trimmed, non-empty sentences.</summary>
    public static List<string> Split(string text)
    {
        var sentences = new List<string>();
        Split(text, sentences);
        return sentences;
    }

    /// <summary>Appends the trimmed, non-empty sentences of <paramref name="text"/> to <paramref name="sentences"/>.
    /// Line breaks inside <paramref name="text"/> are read as spaces.</summary>
    public static void Split(string text, List<string> sentences)
    {
        int n = text.Length;
        int start = 0, pos = 0;
        var pairs = new PairCounter(text);
        while (pos < n)
        {
            int k = text.AsSpan(pos).IndexOfAny(Terminators);
            if (k < 0) break;
            int t = pos + k;
            int afterPunct = t + 1;
            while (afterPunct < n && Terminators.Contains(text[afterPunct])) afterPunct++;
            pos = afterPunct;

            int end = afterPunct;                       // end of the sentence, exclusive
            while (end < n && IsCloser(text[end])) end++;
            int next = SkipSpace(text, end);
            if (next == end || next == n) continue;     // no space after the mark, or nothing follows

            // Spaced-off closers (WikiText: `. " The`, `. ) The`) belong to this sentence when they close a quote or
            // bracket opened before them in the text (possibly sentences ago: a quote may span sentences).
            while (next < n && (pairs.Closes(next) || ClosesBeforeQuote(text, next, ref pairs)))
            {
                int after = SkipSpace(text, next + 1);
                if (after == next + 1) break;
                end = next + 1;
                next = after;
            }
            if (next >= n || OnlyClosersLeft(text, next)) break;   // the rest belongs to this sentence
            if (!StartsSentence(text, next)) continue;
            if (afterPunct - t == 1 && text[t] == '.' && IsAbbreviation(text, start, t, next)) continue;

            Add(text, start, end, sentences);
            start = next;
            pos = next;
        }
        Add(text, start, n, sentences);
    }

    /// <summary>A spaced single quote right before a closing <c>"</c> (<c>. ' " Then</c>: a quote inside a quote
    /// ending together). Single quotes are not counted on their own: WikiText spaces off apostrophes too.</summary>
    static bool ClosesBeforeQuote(string text, int i, ref PairCounter pairs)
    {
        if (text[i] is not ('\'' or '\u2019')) return false;
        int j = SkipSpace(text, i + 1);
        return j > i + 1 && j < text.Length && text[j] == '"' && pairs.Closes(j);
    }

    /// <summary>Whether the text from <paramref name="i"/> on holds only closing quotes/brackets and spaces.</summary>
    static bool OnlyClosersLeft(string text, int i)
    {
        for (; i < text.Length; i++)
            if (!IsCloser(text[i]) && !char.IsWhiteSpace(text[i])) return false;
        return true;
    }

    static void Add(string text, int start, int end, List<string> sentences)
    {
        var span = text.AsSpan(start, end - start).Trim();
        if (span.IsEmpty) return;
        string s = span.Length == text.Length ? text : span.ToString();
        if (s.AsSpan().IndexOfAny('\n', '\r') >= 0) s = s.ReplaceLineEndings(" ");
        sentences.Add(s);
    }

    static int SkipSpace(string text, int i)
    {
        while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
        return i;
    }

    static bool IsCloser(char c) => c is '"' or '\'' or ')' or ']' or '}' or '\u201D' or '\u2019' or '\u00BB' or '\u203A';

    static bool IsOpeningQuote(char c) => c is '"' or '\'' or '\u201C' or '\u2018' or '\u00AB' or '\u201E' or '\u2039';

    /// <summary>Counts quotes and brackets from the start of the text up to a position that only moves forward,
    /// so asking at every candidate stays linear in the text's length.</summary>
    struct PairCounter(string text)
    {
        int _upTo, _quotes, _parens, _brackets, _curly;

        /// <summary>Whether the <c>"</c>, <c>)</c>, <c>]</c> or <c>”</c> at <paramref name="i"/> closes one opened
        /// before it (an odd number of <c>"</c>, or more openers than closers, before <paramref name="i"/>).</summary>
        public bool Closes(int i)
        {
            char c = text[i];
            if (c is not ('"' or ')' or ']' or '\u201D')) return false;
            if (i > _upTo)
            {
                var span = text.AsSpan(_upTo, i - _upTo);
                _quotes += span.Count('"');
                _parens += span.Count('(') - span.Count(')');
                _brackets += span.Count('[') - span.Count(']');
                _curly += span.Count('\u201C') - span.Count('\u201D');
                _upTo = i;
            }
            return c switch
            {
                '"' => _quotes % 2 == 1,
                ')' => _parens > 0,
                ']' => _brackets > 0,
                _ => _curly > 0,
            };
        }
    }

    static bool StartsSentence(string text, int i)
    {
        char c = text[i];
        if (char.IsUpper(c) || char.IsDigit(c) || IsOpeningQuote(c)) return true;
        if (char.IsLetter(c)) return !char.IsLower(c);          // uncased scripts
        var rest = text.AsSpan(i);
        if (rest.StartsWith("<unk>", StringComparison.Ordinal) || rest.StartsWith("[UNK]", StringComparison.Ordinal)) return true;
        if (c is '(' or '[' && i + 1 < text.Length)
        {
            char d = text[i + 1];
            if (d == ' ' && i + 2 < text.Length) d = text[i + 2];   // WikiText: `( The`
            return char.IsUpper(d) || char.IsDigit(d);
        }
        return false;
    }

    /// <summary>Whether the word ending at the period <paramref name="dot"/> is an abbreviation, so the period
    /// ends no sentence. <paramref name="next"/> is where the following word starts.</summary>
    static bool IsAbbreviation(string text, int start, int dot, int next)
    {
        int w = dot;
        while (w > start && !char.IsWhiteSpace(text[w - 1])) w--;
        while (w < dot && (IsOpeningQuote(text[w]) || text[w] is '(' or '[')) w++;
        var word = text.AsSpan(w, dot - w);
        if (word.IsEmpty) return false;                          // a free-standing period (WikiText style)
        if (word.Length == 1) return char.IsUpper(word[0]) || word[0] is 'c' or 'p' or 'v';   // an initial; c. p. v.
        if (word.Contains('.')) return IsDottedAbbreviation(word);
        var lookup = Abbreviations.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.Contains(word)) return true;
        return char.IsDigit(text[next]) && NumberAbbreviations.GetAlternateLookup<ReadOnlySpan<char>>().Contains(word);
    }

    /// <summary>U.S, e.g, i.e, Ph.D, a.m: letters in parts of one or two, separated by single dots.</summary>
    static bool IsDottedAbbreviation(ReadOnlySpan<char> word)
    {
        int part = 0;
        foreach (char c in word)
        {
            if (c == '.')
            {
                if (part == 0) return false;
                part = 0;
            }
            else if (char.IsLetter(c))
            {
                if (++part > 2) return false;
            }
            else return false;
        }
        return part > 0;
    }
}
