namespace BertSharp.Pretraining;

/// <summary>An unmasked pre-training example as token ids: [CLS] A [SEP] B [SEP] for next-sentence prediction, or
/// one segment, [CLS] A [SEP], for the masked-LM objective alone (<see cref="IsRandomNext"/> then false).</summary>
public sealed record NspExample(int[] InputIds, int[] TokenTypeIds, bool IsRandomNext);

/// <summary>An example after masking: input ids with masks applied, the masked positions (ascending) and the
/// original ids there.</summary>
public sealed record MaskedExample(int[] InputIds, int[] TokenTypeIds, int[] MaskedPositions, int[] MaskedLabels, bool IsRandomNext);

public sealed record PretrainingDataOptions
{
    public int MaxSeqLength { get; init; } = 128;
    public double ShortSeqProb { get; init; } = 0.1;
    public double MaskedLmProb { get; init; } = 0.15;
    public int MaxPredictionsPerSeq { get; init; } = 20;
    public bool WholeWordMask { get; init; }
}

/// <summary>The special ids and vocabulary facts masking needs.</summary>
public sealed record MaskingVocab(int VocabSize, int ClsId, int SepId, int MaskId, bool[] IsContinuation);

/// <summary>
/// Google BERT's create_pretraining_data recipe. Documents are lists of sentences, each a WordPiece id array.
/// Per document, sentences are gathered into chunks up to a target length (max_seq_length − 3, or with
/// probability short_seq_prob a random shorter one); segment A is the first 1..n−1 sentences of the chunk; B is
/// the rest or, half the time (always when the chunk is one sentence), a span from a random other document, in
/// which case the unused sentences are put back; the longer segment is truncated from a random end.
/// </summary>
public static class PretrainingExamples
{
    public static List<NspExample> CreateNspExamples(IReadOnlyList<IReadOnlyList<int[]>> documents, PretrainingDataOptions o,
        int clsId, int sepId, long seed)
    {
        if (o.MaxSeqLength < 5) throw new BertSharpException($"maxSeqLength must be at least 5, got {o.MaxSeqLength}") { Parameters = ["maxSeqLength"] };
        var docs = documents.Where(d => d.Count > 0).ToList();
        if (docs.Count < 2) throw new BertSharpException("pre-training needs at least two non-empty documents (next-sentence prediction draws B from another document)");
        var result = new List<NspExample>();
        for (int d = 0; d < docs.Count; d++)
        {
            var rng = SplitMix.For(seed, 0x4E5350 /* "NSP" */, d);
            FromDocument(docs, d, o, clsId, sepId, ref rng, result);
        }
        return result;
    }

    static void FromDocument(List<IReadOnlyList<int[]>> docs, int docIndex, PretrainingDataOptions o, int clsId, int sepId,
        ref SplitMix rng, List<NspExample> output)
    {
        var document = docs[docIndex];
        int maxTokens = o.MaxSeqLength - 3;
        int target = rng.NextDouble() < o.ShortSeqProb ? rng.NextInclusive(2, maxTokens) : maxTokens;
        var chunk = new List<int[]>();
        int chunkLength = 0;
        for (int i = 0; i < document.Count; i++)
        {
            chunk.Add(document[i]);
            chunkLength += document[i].Length;
            if (i != document.Count - 1 && chunkLength < target) continue;
            if (chunk.Count > 0)
            {
                int aEnd = chunk.Count >= 2 ? rng.NextInclusive(1, chunk.Count - 1) : 1;
                var a = new List<int>();
                for (int j = 0; j < aEnd; j++) a.AddRange(chunk[j]);
                var b = new List<int>();
                bool randomNext;
                if (chunk.Count == 1 || rng.NextDouble() < 0.5)
                {
                    randomNext = true;
                    int targetB = target - a.Count;
                    int other = docIndex;
                    for (int t = 0; t < 10 && other == docIndex; t++) other = rng.Next(docs.Count);
                    var otherDoc = docs[other];
                    for (int j = rng.Next(otherDoc.Count); j < otherDoc.Count; j++)
                    {
                        b.AddRange(otherDoc[j]);
                        if (b.Count >= targetB) break;
                    }
                    i -= chunk.Count - aEnd; // the sentences not used for A start the next chunk
                }
                else
                {
                    randomNext = false;
                    for (int j = aEnd; j < chunk.Count; j++) b.AddRange(chunk[j]);
                }
                TruncatePair(a, b, maxTokens, ref rng);
                if (a.Count >= 1 && b.Count >= 1)
                    output.Add(Assemble(a, b, randomNext, clsId, sepId));
            }
            chunk.Clear();
            chunkLength = 0;
        }
    }

    /// <summary>
    /// Examples for the masked-LM objective alone, as transformers' run_mlm.py groups text: each document's sentences
    /// packed in order into one segment, [CLS] tokens [SEP], of at most max_seq_length tokens; a sentence that does not
    /// fit starts the next example, and one longer than an example is cut across examples. No text is dropped (unlike
    /// the NSP recipe's truncation) and documents are not mixed in one example.
    /// </summary>
    public static List<NspExample> CreateMlmExamples(IReadOnlyList<IReadOnlyList<int[]>> documents, PretrainingDataOptions o, int clsId, int sepId)
    {
        if (o.MaxSeqLength < 5) throw new BertSharpException($"maxSeqLength must be at least 5, got {o.MaxSeqLength}") { Parameters = ["maxSeqLength"] };
        int maxTokens = o.MaxSeqLength - 2;
        var result = new List<NspExample>();
        var segment = new List<int>(maxTokens);
        void Flush()
        {
            if (segment.Count == 0) return;
            var ids = new int[segment.Count + 2];
            ids[0] = clsId;
            segment.CopyTo(ids, 1);
            ids[^1] = sepId;
            result.Add(new NspExample(ids, new int[ids.Length], false));
            segment.Clear();
        }
        foreach (var document in documents)
        {
            foreach (var sentence in document)
            {
                if (segment.Count + sentence.Length > maxTokens) Flush();
                for (int start = 0; start < sentence.Length; start += maxTokens)
                {
                    int n = Math.Min(maxTokens, sentence.Length - start);
                    if (segment.Count + n > maxTokens) Flush();
                    segment.AddRange(sentence.AsSpan(start, n));
                }
            }
            Flush();
        }
        return result;
    }

    /// <summary>Removes tokens from the longer segment, from the front or the back at random, until both fit.</summary>
    static void TruncatePair(List<int> a, List<int> b, int maxTokens, ref SplitMix rng)
    {
        while (a.Count + b.Count > maxTokens)
        {
            var longer = a.Count > b.Count ? a : b;
            if (rng.NextDouble() < 0.5) longer.RemoveAt(0);
            else longer.RemoveAt(longer.Count - 1);
        }
    }

    static NspExample Assemble(List<int> a, List<int> b, bool randomNext, int clsId, int sepId)
    {
        var ids = new int[a.Count + b.Count + 3];
        var types = new int[ids.Length];
        ids[0] = clsId;
        a.CopyTo(ids, 1);
        ids[a.Count + 1] = sepId;
        b.CopyTo(ids, a.Count + 2);
        ids[^1] = sepId;
        for (int i = a.Count + 2; i < ids.Length; i++) types[i] = 1;
        return new NspExample(ids, types, randomNext);
    }

    /// <summary>
    /// Chooses masked_lm_prob of the tokens (at most max_predictions_per_seq, at least one) among all but [CLS]/[SEP],
    /// whole words together with --whole-word-mask; of those 80% become [MASK], 10% a random token, 10% stay.
    /// </summary>
    public static MaskedExample Mask(NspExample e, PretrainingDataOptions o, MaskingVocab v, ref SplitMix rng)
    {
        var ids = e.InputIds;
        var candidates = new List<List<int>>();
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] == v.ClsId || ids[i] == v.SepId) continue;
            if (o.WholeWordMask && candidates.Count > 0 && v.IsContinuation[ids[i]] && candidates[^1][^1] == i - 1)
                candidates[^1].Add(i);
            else
                candidates.Add(new List<int> { i });
        }
        rng.Shuffle(candidates);
        int toPredict = Math.Min(o.MaxPredictionsPerSeq, Math.Max(1, (int)Math.Round(ids.Length * o.MaskedLmProb, MidpointRounding.ToEven)));
        var output = (int[])ids.Clone();
        var chosen = new List<int>();
        foreach (var set in candidates)
        {
            if (chosen.Count >= toPredict) break;
            if (chosen.Count + set.Count > toPredict) continue;
            foreach (int i in set)
            {
                if (rng.NextDouble() < 0.8) output[i] = v.MaskId;
                else if (rng.NextDouble() >= 0.5) output[i] = rng.Next(v.VocabSize); // else: keep the original
                chosen.Add(i);
            }
        }
        chosen.Sort();
        return new MaskedExample(output, e.TokenTypeIds, chosen.ToArray(), chosen.Select(i => ids[i]).ToArray(), e.IsRandomNext);
    }
}
