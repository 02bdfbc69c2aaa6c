using System.Globalization;
using System.Text;

namespace BertSharp.Evaluation;

/// <summary>Tagging schemes for spans: IOB1 (I- starts a chunk, B- only between two adjacent chunks of one
/// type), IOB2 (every chunk starts with B-) and IOBES (also E- ends a chunk, S- is a one-token chunk).</summary>
public enum EntityScheme { IOB1, IOB2, IOBES }

/// <summary>A chunk of tokens [Start, End) of one type, in sentence <see cref="Sentence"/>.</summary>
public readonly record struct Entity(int Sentence, string Type, int Start, int End);

/// <summary>Entity precision, recall and F1 (micro-averaged over all entities), and the same per type.</summary>
public sealed record EntityScores(double Precision, double Recall, double F1, int GoldEntities, int PredictedEntities, int Correct,
    IReadOnlyList<(string Type, double Precision, double Recall, double F1, int Support)> PerType)
{
    public string Format()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        int w = Math.Max(12, PerType.Count == 0 ? 0 : PerType.Max(t => t.Type.Length) + 2);
        sb.Append("entity".PadRight(w)).Append("precision  recall     f1         support\n");
        foreach (var t in PerType)
            sb.Append(t.Type.PadRight(w)).Append(string.Format(inv, "{0,-11:F4}{1,-11:F4}{2,-11:F4}{3}\n", t.Precision, t.Recall, t.F1, t.Support));
        sb.Append("micro avg".PadRight(w)).Append(string.Format(inv, "{0,-11:F4}{1,-11:F4}{2,-11:F4}{3}\n", Precision, Recall, F1, GoldEntities));
        return sb.ToString();
    }
}

/// <summary>
/// Entity extraction and scoring with the semantics of the Python package seqeval (the scorer HF's token
/// classification examples report):
/// <list type="bullet">
/// <item><see cref="Extract(IReadOnlyList{string})"/> is seqeval's default mode (<c>get_entities</c>, the
/// conlleval rules): one lenient reading that accepts IOB1, IOB2 and IOBES alike; an I- after O or after another
/// type starts a chunk.</item>
/// <item><see cref="ExtractStrict"/> is seqeval's <c>mode="strict"</c> with a given scheme: only chunks that are
/// well formed in that scheme count (an IOB2 chunk must start with B-).</item>
/// </list>
/// A tag is "O" or a prefix letter, '-', and a type ("B-PER"); a bare prefix has type "_", as in seqeval.
/// </summary>
public static class Entities
{
    /// <summary>Whether the tags look like chunk tags: each is "O" or B-/I-/E-/S- + type, and at least one is not "O".</summary>
    public static bool IsChunkTagSet(IEnumerable<string> tags)
    {
        bool any = false;
        foreach (var t in tags)
        {
            if (t == "O") continue;
            if (t.Length < 3 || t[1] != '-' || "BIES".IndexOf(t[0]) < 0) return false;
            any = true;
        }
        return any;
    }

    /// <summary>The scheme the gold tags follow: IOBES when E- or S- occurs; IOB1 when some chunk starts with I-
    /// (at the start of a sentence, after O or after another type); else IOB2. Null when the tags are not chunk tags.</summary>
    public static EntityScheme? Detect(IEnumerable<IReadOnlyList<string>> sentences)
    {
        var list = sentences.ToList();
        if (!IsChunkTagSet(list.SelectMany(s => s))) return null;
        bool iobes = false, iStarts = false;
        foreach (var s in list)
        {
            string prev = "O";
            foreach (var t in s)
            {
                if (t[0] is 'E' or 'S') iobes = true;
                if (t[0] == 'I' && (prev == "O" || prev[0] is 'E' or 'S' || Type(prev) != Type(t))) iStarts = true;
                prev = t;
            }
        }
        return iobes ? EntityScheme.IOBES : iStarts ? EntityScheme.IOB1 : EntityScheme.IOB2;
    }

    static char Prefix(string tag) => tag.Length == 0 ? 'O' : tag[0];

    // seqeval: type_ = chunk[1:].split('-', maxsplit=1)[-1] or '_'
    static string Type(string tag)
    {
        if (tag.Length <= 1) return "_";
        var rest = tag.AsSpan(1);
        int dash = rest.IndexOf('-');
        var type = dash >= 0 ? rest[(dash + 1)..] : rest;
        return type.Length == 0 ? "_" : type.ToString();
    }

    /// <summary>seqeval's default (lenient) chunking of one sentence.</summary>
    public static List<Entity> Extract(IReadOnlyList<string> tags, int sentence = 0)
    {
        var chunks = new List<Entity>();
        char prevTag = 'O';
        string prevType = "";
        int begin = 0;
        for (int i = 0; i <= tags.Count; i++)
        {
            string chunk = i < tags.Count ? tags[i] : "O";
            char tag = Prefix(chunk);
            string type = Type(chunk);
            if (EndOfChunk(prevTag, tag, prevType, type)) chunks.Add(new Entity(sentence, prevType, begin, i));
            if (StartOfChunk(prevTag, tag, prevType, type)) begin = i;
            prevTag = tag;
            prevType = type;
        }
        return chunks;
    }

    static bool EndOfChunk(char prev, char tag, string prevType, string type) =>
        prev is 'E' or 'S'
        || (prev == 'B' && tag is 'B' or 'S' or 'O')
        || (prev == 'I' && tag is 'B' or 'S' or 'O')
        || (prev != 'O' && prev != '.' && prevType != type);

    static bool StartOfChunk(char prev, char tag, string prevType, string type) =>
        tag is 'B' or 'S'
        || (prev is 'E' or 'S' or 'O' && tag is 'E' or 'I')
        || (tag != 'O' && tag != '.' && prevType != type);

    // seqeval.scheme: (previous prefix, current prefix, same type?) patterns per scheme. null = any type.
    sealed record Pattern(string Prev, string Cur, bool? SameType);

    sealed record SchemeRules(string Allowed, Pattern[] Start, Pattern[] Inside, Pattern[] End);

    const string Any = "IOBES";

    static readonly Dictionary<EntityScheme, SchemeRules> Rules = new()
    {
        [EntityScheme.IOB1] = new("IOB",
            Start: [new("O", "I", null), new("I", "I", false), new("B", "I", null), new("I", "B", true), new("B", "B", true)],
            Inside: [new("B", "I", true), new("I", "I", true)],
            End: [new("I", "I", false), new("I", "O", null), new("I", "B", null), new("B", "O", null), new("B", "I", false), new("B", "B", true)]),
        [EntityScheme.IOB2] = new("IOB",
            Start: [new(Any, "B", null)],
            Inside: [new("B", "I", true), new("I", "I", true)],
            End: [new("I", "O", null), new("I", "I", false), new("I", "B", null), new("B", "O", null), new("B", "I", false), new("B", "B", null)]),
        [EntityScheme.IOBES] = new("IOBES",
            Start: [new(Any, "B", null), new(Any, "S", null)],
            Inside: [new("B", "I", true), new("B", "E", true), new("I", "I", true), new("I", "E", true)],
            End: [new("S", Any, null), new("E", Any, null)]),
    };

    readonly record struct Tok(char Prefix, string Type);

    // seqeval Token: prefix = token[0]; tag = token[1:].strip('-') or '_'
    static Tok Parse(string t) => new(Prefix(t), t.Length <= 1 ? "_" : (t[1..].Trim('-') is { Length: > 0 } s ? s : "_"));

    static bool Matches(Pattern[] patterns, Tok prev, Tok cur) =>
        patterns.Any(p => p.Prev.Contains(prev.Prefix) && p.Cur.Contains(cur.Prefix) && (p.SameType is null || p.SameType == (prev.Type == cur.Type)));

    /// <summary>seqeval's strict mode (<c>Tokens(tags, scheme).entities</c>) for one sentence. A tag whose prefix the
    /// scheme does not allow is an error, as in seqeval.</summary>
    public static List<Entity> ExtractStrict(IReadOnlyList<string> tags, EntityScheme scheme, int sentence = 0)
    {
        var rules = Rules[scheme];
        var outside = Parse("O");
        var toks = tags.Select(Parse).Append(outside).ToArray();   // the extended tokens
        int n = tags.Count;
        var entities = new List<Entity>();
        int i = 0;
        var prev = outside;
        while (i < toks.Length)
        {
            var token = toks[i];
            if (!rules.Allowed.Contains(token.Prefix))
                throw new BertSharpException($"tag '{(i < n ? tags[i] : "O")}' is not valid in {scheme} (allowed prefixes: {string.Join(", ", rules.Allowed.ToCharArray())})");
            if (Matches(rules.Start, prev, token))
            {
                int end = Forward(toks, n, rules, i + 1, token);
                if (Matches(rules.End, toks[end - 1], toks[end])) entities.Add(new Entity(sentence, token.Type, i, end));
                i = end;
            }
            else i++;
            prev = toks[i - 1];
        }
        return entities;
    }

    static int Forward(Tok[] toks, int n, SchemeRules rules, int start, Tok prev)
    {
        for (int i = start; i < toks.Length; i++)
        {
            if (Matches(rules.Inside, prev, toks[i])) prev = toks[i];
            else return i;
        }
        return n - 1;   // as seqeval's _forward (unreachable: the final "O" is never inside)
    }

    /// <summary>seqeval's precision_score / recall_score / f1_score (micro average) and classification_report per
    /// type. <paramref name="strict"/> null is seqeval's default mode; a scheme is mode="strict" with that scheme.</summary>
    public static EntityScores Score(IReadOnlyList<IReadOnlyList<string>> gold, IReadOnlyList<IReadOnlyList<string>> predicted, EntityScheme? strict = null)
    {
        if (gold.Count != predicted.Count) throw new ArgumentException($"{gold.Count} gold sentences but {predicted.Count} predicted");
        var g = new HashSet<Entity>();
        var p = new HashSet<Entity>();
        for (int s = 0; s < gold.Count; s++)
        {
            if (gold[s].Count != predicted[s].Count)
                throw new ArgumentException($"sentence {s}: {gold[s].Count} gold tags but {predicted[s].Count} predicted");
            foreach (var e in strict is EntityScheme sc ? ExtractStrict(gold[s], sc, s) : Extract(gold[s], s)) g.Add(e);
            foreach (var e in strict is EntityScheme sc2 ? ExtractStrict(predicted[s], sc2, s) : Extract(predicted[s], s)) p.Add(e);
        }
        int correct = g.Count(p.Contains);
        var types = g.Select(e => e.Type).Concat(p.Select(e => e.Type)).Distinct().Order(StringComparer.Ordinal).ToList();
        var perType = types.Select(t =>
        {
            int gt = g.Count(e => e.Type == t), pt = p.Count(e => e.Type == t), ct = g.Count(e => e.Type == t && p.Contains(e));
            var (pr, rc, f) = Prf(ct, pt, gt);
            return (t, pr, rc, f, gt);
        }).ToList();
        var (precision, recall, f1) = Prf(correct, p.Count, g.Count);
        return new EntityScores(precision, recall, f1, g.Count, p.Count, correct, perType);
    }

    static (double P, double R, double F) Prf(int correct, int predicted, int gold)
    {
        double p = predicted == 0 ? 0 : (double)correct / predicted;
        double r = gold == 0 ? 0 : (double)correct / gold;
        return (p, r, p + r == 0 ? 0 : 2 * p * r / (p + r));
    }
}
