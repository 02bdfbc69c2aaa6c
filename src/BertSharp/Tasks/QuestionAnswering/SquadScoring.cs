using System.Globalization;
using System.Text;

namespace BertSharp.Tasks.QuestionAnswering;

/// <summary>The official SQuAD numbers, in percent as the evaluation scripts print them.</summary>
public sealed record SquadScores
{
    public double ExactMatch { get; init; }
    public double F1 { get; init; }
    public int Total { get; init; }
    /// <summary>Which official script the numbers follow: "1.1" or "2.0".</summary>
    public string ScriptVersion { get; init; } = "1.1";
    /// <summary>v2.0 only: the breakdown over answerable (HasAns) and unanswerable (NoAns) questions.</summary>
    public double? HasAnsExact { get; init; }
    public double? HasAnsF1 { get; init; }
    public int? HasAnsTotal { get; init; }
    public double? NoAnsExact { get; init; }
    public double? NoAnsF1 { get; init; }
    public int? NoAnsTotal { get; init; }
    /// <summary>Questions that had no prediction (scored 0 by v1.1, left out by v2.0, as the scripts do).</summary>
    public int Missing { get; init; }

    /// <summary>The keys the official scripts print: exact_match/f1 (v1.1) or exact/f1/total/HasAns_*/NoAns_* (v2.0);
    /// "exact_match" is always present so one selection metric serves both.</summary>
    public Dictionary<string, double> ToDictionary()
    {
        var d = new Dictionary<string, double> { ["exact_match"] = ExactMatch, ["f1"] = F1, ["total"] = Total };
        if (ScriptVersion == "2.0")
        {
            d["exact"] = ExactMatch;
            if (HasAnsTotal is int h && h > 0) { d["HasAns_exact"] = HasAnsExact!.Value; d["HasAns_f1"] = HasAnsF1!.Value; d["HasAns_total"] = h; }
            if (NoAnsTotal is int n && n > 0) { d["NoAns_exact"] = NoAnsExact!.Value; d["NoAns_f1"] = NoAnsF1!.Value; d["NoAns_total"] = n; }
        }
        return d;
    }
}

/// <summary>
/// A port of the official SQuAD evaluation scripts (evaluate-v1.1.py and evaluate-v2.0.py): the same answer
/// normalization (lower-case, punctuation removed, the articles a/an/the removed, whitespace collapsed), exact
/// match, and bag-of-tokens F1, each the maximum over the gold answers.
/// </summary>
public static class SquadScoring
{
    /// <summary>Python's <c>string.punctuation</c>.</summary>
    public const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    /// <summary>
    /// <c>normalize_answer</c>: <c>white_space_fix(remove_articles(remove_punc(lower(s))))</c>, with Python 3's
    /// semantics: full Unicode lower-casing (İ → i̇, final Σ → ς), <c>\b</c> as Python's <c>re</c> defines it on str
    /// patterns, and <c>str.split()</c>'s whitespace.
    /// </summary>
    public static string Normalize(string s) => string.Join(' ', Split(RemoveArticles(RemovePunctuation(PyLower(s)))));

    /// <summary>The normalized answer's tokens (<c>normalize_answer(s).split()</c>).</summary>
    public static List<string> Tokens(string s) => Split(RemoveArticles(RemovePunctuation(PyLower(s))));

    /// <summary>v1.1 <c>exact_match_score</c> (and v2.0 <c>compute_exact</c>: the same test).</summary>
    public static bool ExactMatch(string prediction, string groundTruth) => Normalize(prediction) == Normalize(groundTruth);

    /// <summary>v1.1 <c>f1_score</c>: 0 when no token is shared (also when both are empty).</summary>
    public static double F1V1(string prediction, string groundTruth) => F1(Tokens(prediction), Tokens(groundTruth), version2: false);

    /// <summary>v2.0 <c>compute_f1</c>: when either side has no tokens, 1 if both have none, else 0.</summary>
    public static double F1V2(string goldAnswer, string prediction) =>
        F1(prediction.Length == 0 ? new List<string>() : Tokens(prediction), goldAnswer.Length == 0 ? new List<string>() : Tokens(goldAnswer), version2: true);

    static double F1(List<string> pred, List<string> gold, bool version2)
    {
        if (version2 && (pred.Count == 0 || gold.Count == 0)) return pred.Count == gold.Count ? 1 : 0;
        // Counter(prediction_tokens) & Counter(ground_truth_tokens): the multiset intersection.
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in gold) counts[t] = counts.GetValueOrDefault(t) + 1;
        int same = 0;
        foreach (var t in pred)
            if (counts.TryGetValue(t, out int c) && c > 0) { counts[t] = c - 1; same++; }
        if (same == 0) return 0;
        double precision = (double)same / pred.Count, recall = (double)same / gold.Count;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>
    /// evaluate-v1.1.py: every question counts; a missing prediction scores 0; EM and F1 are the maximum over the
    /// question's answers. A question without answers cannot be scored by v1.1 (the script would fail): an error.
    /// </summary>
    public static SquadScores EvaluateV1(IEnumerable<SquadExample> questions, IReadOnlyDictionary<string, string> predictions)
    {
        double em = 0, f1 = 0;
        int total = 0, missing = 0;
        foreach (var q in questions)
        {
            total++;
            if (!predictions.TryGetValue(q.Id, out var pred)) { missing++; continue; }
            if (q.Answers.Count == 0)
                throw new BertSharpException($"question {q.Id} has no answers: the SQuAD v1.1 score needs at least one (score SQuAD v2.0 data, with unanswerable questions, as v2.0)");
            em += q.Answers.Max(a => ExactMatch(pred, a.Text) ? 1.0 : 0.0);
            f1 += q.Answers.Max(a => F1V1(pred, a.Text));
        }
        return new SquadScores
        {
            ExactMatch = total == 0 ? 0 : 100.0 * em / total,
            F1 = total == 0 ? 0 : 100.0 * f1 / total,
            Total = total,
            Missing = missing,
            ScriptVersion = "1.1",
        };
    }

    /// <summary>
    /// evaluate-v2.0.py without a no-answer-probability file: gold answers that normalize to nothing are dropped and
    /// a question left without any is answered correctly only by the empty string; questions without a prediction
    /// are left out of the totals (the script prints "Missing prediction"); HasAns/NoAns by whether the question has
    /// answers.
    /// </summary>
    public static SquadScores EvaluateV2(IEnumerable<SquadExample> questions, IReadOnlyDictionary<string, string> predictions)
    {
        double em = 0, f1 = 0, hasEm = 0, hasF1 = 0, noEm = 0, noF1 = 0;
        int total = 0, hasTotal = 0, noTotal = 0, missing = 0;
        foreach (var q in questions)
        {
            if (!predictions.TryGetValue(q.Id, out var pred)) { missing++; continue; }
            var gold = q.Answers.Select(a => a.Text).Where(t => Normalize(t).Length > 0).ToList();
            if (gold.Count == 0) gold.Add("");
            double e = gold.Max(g => ExactMatch(pred, g) ? 1.0 : 0.0);
            double f = gold.Max(g => F1V2(g, pred));
            total++; em += e; f1 += f;
            if (q.Answers.Count > 0) { hasTotal++; hasEm += e; hasF1 += f; }
            else { noTotal++; noEm += e; noF1 += f; }
        }
        static double Pct(double v, int n) => n == 0 ? 0 : 100.0 * v / n;
        return new SquadScores
        {
            ExactMatch = Pct(em, total), F1 = Pct(f1, total), Total = total, Missing = missing, ScriptVersion = "2.0",
            HasAnsExact = Pct(hasEm, hasTotal), HasAnsF1 = Pct(hasF1, hasTotal), HasAnsTotal = hasTotal,
            NoAnsExact = Pct(noEm, noTotal), NoAnsF1 = Pct(noF1, noTotal), NoAnsTotal = noTotal,
        };
    }

    /// <summary>v2.0 scoring when <paramref name="version2"/>, else v1.1.</summary>
    public static SquadScores Evaluate(IEnumerable<SquadExample> questions, IReadOnlyDictionary<string, string> predictions, bool version2) =>
        version2 ? EvaluateV2(questions, predictions) : EvaluateV1(questions, predictions);

    // ---- Python 3 string semantics -------------------------------------------------------------------------

    /// <summary><c>str.lower()</c>: full case mapping per code point, including the two context-free/contextual
    /// special cases Python applies (U+0130 → "i̇"; Σ → ς at the end of a word).</summary>
    internal static string PyLower(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length;)
        {
            var r = Rune.GetRuneAt(s, i);
            if (r.Value == 0x130) sb.Append("i\u0307");
            else if (r.Value == 0x3A3) sb.Append(IsFinalSigma(s, i) ? 'ς' : 'σ');
            else sb.Append(Rune.ToLowerInvariant(r).ToString());
            i += r.Utf16SequenceLength;
        }
        return sb.ToString();
    }

    // Unicode Final_Sigma as CPython implements it: preceded by a cased letter (skipping case-ignorable characters)
    // and not followed by one.
    static bool IsFinalSigma(string s, int at)
    {
        int j = at;
        bool before = false;
        while (j > 0)
        {
            var r = RuneBefore(s, j);
            j -= r.Utf16SequenceLength;
            if (IsCaseIgnorable(r)) continue;
            before = IsCased(r);
            break;
        }
        if (!before) return false;
        j = at + 1;
        while (j < s.Length)
        {
            var r = Rune.GetRuneAt(s, j);
            j += r.Utf16SequenceLength;
            if (IsCaseIgnorable(r)) continue;
            return !IsCased(r);
        }
        return true;
    }

    static Rune RuneBefore(string s, int end) =>
        end >= 2 && char.IsLowSurrogate(s[end - 1]) && char.IsHighSurrogate(s[end - 2]) ? Rune.GetRuneAt(s, end - 2) : new Rune(char.IsSurrogate(s[end - 1]) ? '\uFFFD' : s[end - 1]);

    static bool IsCased(Rune r) => Rune.IsUpper(r) || Rune.IsLower(r) || Rune.GetUnicodeCategory(r) == UnicodeCategory.TitlecaseLetter;

    static bool IsCaseIgnorable(Rune r) => Rune.GetUnicodeCategory(r) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
        or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol
        || r.Value is '\'' or '.' or ':' or '^' or '`' or 0xB7 or 0x2019;

    static string RemovePunctuation(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s) if (Punctuation.IndexOf(c) < 0) sb.Append(c);
        return sb.ToString();
    }

    /// <summary><c>re.sub(r'\b(a|an|the)\b', ' ', text)</c> with Python's Unicode <c>\w</c> (letters, numbers, '_').</summary>
    static string RemoveArticles(string s)
    {
        var sb = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            if (s[i] is 'a' or 't' && (i == 0 || !IsWordBefore(s, i)))
            {
                int len = Article(s, i);
                if (len > 0) { sb.Append(' '); i += len; continue; }
            }
            sb.Append(s[i]);
            i++;
        }
        return sb.ToString();
    }

    // Length of "a", "an" or "the" at i when a word boundary follows it, else 0.
    static int Article(string s, int i)
    {
        foreach (var w in new[] { "a", "an", "the" })
            if (string.CompareOrdinal(s, i, w, 0, w.Length) == 0 && (i + w.Length == s.Length || !IsWordAt(s, i + w.Length)))
                return w.Length;
        return 0;
    }

    static bool IsWordAt(string s, int i) => IsPyWord(Rune.TryGetRuneAt(s, i, out var r) ? r : new Rune('\uFFFD'));
    static bool IsWordBefore(string s, int i) => IsPyWord(RuneBefore(s, i));

    /// <summary>Python <c>re</c>'s \w for str: <c>ch.isalnum() or ch == '_'</c> (letters L*, numbers N*).</summary>
    static bool IsPyWord(Rune r)
    {
        if (r.Value == '_') return true;
        var cat = Rune.GetUnicodeCategory(r);
        return cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;
    }

    /// <summary><c>str.split()</c>: runs of Unicode whitespace (including U+001C–U+001F, as Python counts them).</summary>
    static List<string> Split(string s)
    {
        var parts = new List<string>();
        int start = -1;
        for (int i = 0; i <= s.Length; i++)
        {
            bool space = i == s.Length || char.IsWhiteSpace(s[i]) || s[i] is >= '\x1c' and <= '\x1f';
            if (space) { if (start >= 0) { parts.Add(s[start..i]); start = -1; } }
            else if (start < 0) start = i;
        }
        return parts;
    }
}
