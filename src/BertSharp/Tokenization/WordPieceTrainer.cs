namespace BertSharp.Tokenization;

public sealed record WordPieceTrainerOptions
{
    public int VocabSize { get; init; } = 30522;
    /// <summary>A pair of pieces is merged only if it occurs at least this often.</summary>
    public int MinFrequency { get; init; } = 2;
    /// <summary>At most this many distinct characters (the most frequent) enter the vocabulary.</summary>
    public int LimitAlphabet { get; init; } = 1000;
    public IReadOnlyList<string> SpecialTokens { get; init; } = new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
}

/// <summary>
/// Learns a WordPiece vocabulary the way HuggingFace's WordPieceTrainer does: words (after BERT's basic
/// tokenization) start as characters, non-initial ones with the "##" prefix; the most frequent adjacent pair is
/// merged repeatedly until the vocabulary is full or no pair reaches MinFrequency. Deterministic: ties are
/// broken by the pieces' ids, which follow a fixed (ordinal) order.
/// </summary>
public static class WordPieceTrainer
{
    public static List<string> Train(IReadOnlyDictionary<string, long> wordCounts, WordPieceTrainerOptions o)
    {
        if (o.VocabSize <= o.SpecialTokens.Count)
            throw new BertSharpException($"vocabSize {o.VocabSize} leaves no room beyond the {o.SpecialTokens.Count} special tokens") { Parameters = ["vocabSize"] };
        var words = wordCounts.Where(kv => kv.Key.Length > 0 && kv.Value > 0).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();

        // The alphabet: the most frequent characters, as word-initial pieces and as "##" continuations.
        var charCounts = new Dictionary<string, long>();
        foreach (var (w, n) in words)
            foreach (var c in Chars(w)) charCounts[c] = charCounts.GetValueOrDefault(c) + n;
        var alphabet = charCounts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Take(o.LimitAlphabet).Select(kv => kv.Key).ToHashSet();

        var vocab = new List<string>(o.SpecialTokens);
        var ids = new Dictionary<string, int>();
        foreach (var s in vocab) ids.TryAdd(s, ids.Count);
        int Id(string piece)
        {
            if (!ids.TryGetValue(piece, out int id)) { id = vocab.Count; ids[piece] = id; vocab.Add(piece); }
            return id;
        }

        // Initial pieces in a fixed order: word-initial characters, then continuations.
        var initial = new SortedSet<string>(StringComparer.Ordinal);
        var continuation = new SortedSet<string>(StringComparer.Ordinal);
        var symbols = new List<int[]>(words.Count);
        var counts = new long[words.Count];
        var keep = new List<int>();
        for (int i = 0; i < words.Count; i++)
        {
            var chars = Chars(words[i].Key).ToList();
            if (chars.Any(c => !alphabet.Contains(c))) continue; // such words would be [UNK] whole anyway
            initial.Add(chars[0]);
            foreach (var c in chars.Skip(1)) continuation.Add("##" + c);
            keep.Add(i);
        }
        foreach (var s in initial) Id(s);
        foreach (var s in continuation) Id(s);
        if (vocab.Count >= o.VocabSize) return vocab.Take(o.VocabSize).ToList();
        foreach (int i in keep)
        {
            var chars = Chars(words[i].Key).ToList();
            symbols.Add(chars.Select((c, k) => ids[k == 0 ? c : "##" + c]).ToArray());
            counts[symbols.Count - 1] = words[i].Value;
        }

        // Pair statistics: count, and the words each pair occurs in.
        var pairCount = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, HashSet<int>>();
        static long Key(int a, int b) => ((long)a << 32) | (uint)b;
        for (int w = 0; w < symbols.Count; w++)
        {
            var s = symbols[w];
            for (int k = 0; k + 1 < s.Length; k++)
            {
                long key = Key(s[k], s[k + 1]);
                pairCount[key] = pairCount.GetValueOrDefault(key) + counts[w];
                if (!pairWords.TryGetValue(key, out var set)) pairWords[key] = set = new HashSet<int>();
                set.Add(w);
            }
        }
        // Max-heap by count; ties to the smaller pair key. Entries go stale when counts change: skipped on pop.
        var heap = new PriorityQueue<long, (long Count, long Key)>(Comparer<(long Count, long Key)>.Create((x, y) =>
            x.Count != y.Count ? y.Count.CompareTo(x.Count) : x.Key.CompareTo(y.Key)));
        foreach (var (k, c) in pairCount) heap.Enqueue(k, (c, k));

        var changed = new Dictionary<long, long>();
        while (vocab.Count < o.VocabSize && heap.TryDequeue(out long best, out var pri))
        {
            if (!pairCount.TryGetValue(best, out long current) || current != pri.Count) continue; // stale
            if (current < Math.Max(1, o.MinFrequency)) break;
            int a = (int)(best >> 32), b = (int)(best & 0xffffffff);
            var merged = vocab[a] + vocab[b][2..];
            int c = Id(merged);
            changed.Clear();
            foreach (int w in pairWords[best].ToList())
            {
                var s = symbols[w];
                var next = new List<int>(s.Length);
                for (int k = 0; k < s.Length; k++)
                {
                    if (k + 1 < s.Length && s[k] == a && s[k + 1] == b) { next.Add(c); k++; }
                    else next.Add(s[k]);
                }
                if (next.Count == s.Length) continue;
                // Replace this word's pair contributions: remove the old ones, add the new ones.
                for (int k = 0; k + 1 < s.Length; k++) Add(Key(s[k], s[k + 1]), -counts[w], w, remove: true);
                var ns = next.ToArray();
                for (int k = 0; k + 1 < ns.Length; k++) Add(Key(ns[k], ns[k + 1]), counts[w], w, remove: false);
                symbols[w] = ns;
            }
            pairCount.Remove(best);
            pairWords.Remove(best);
            foreach (var (k, _) in changed)
                if (pairCount.TryGetValue(k, out long n) && n > 0) heap.Enqueue(k, (n, k));
        }
        return vocab;

        void Add(long key, long delta, int word, bool remove)
        {
            long n = pairCount.GetValueOrDefault(key) + delta;
            if (n <= 0) { pairCount.Remove(key); pairWords.Remove(key); }
            else
            {
                pairCount[key] = n;
                if (!remove)
                {
                    if (!pairWords.TryGetValue(key, out var set)) pairWords[key] = set = new HashSet<int>();
                    set.Add(word);
                }
            }
            changed[key] = n;
        }
    }

    /// <summary>Characters as strings, keeping surrogate pairs together.</summary>
    static IEnumerable<string> Chars(string w)
    {
        for (int i = 0; i < w.Length; i++)
        {
            if (char.IsHighSurrogate(w[i]) && i + 1 < w.Length && char.IsLowSurrogate(w[i + 1])) { yield return w.Substring(i, 2); i++; }
            else yield return w[i].ToString();
        }
    }
}
