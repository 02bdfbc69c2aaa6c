using BertSharp.Pretraining;

namespace BertSharp.Tests.Pretraining;

public class PretrainingExamplesTests
{
    const int Cls = 2, Sep = 3, MaskId = 4, Vocab = 100;
    static readonly MaskingVocab V = new(Vocab, Cls, Sep, MaskId, Enumerable.Range(0, Vocab).Select(i => i >= 90).ToArray());

    // Document d, sentence s holds tokens 10 + 3·s + (0..len-1) offset by 1000·d so origins are recognisable.
    static List<IReadOnlyList<int[]>> Docs(int docs, int sentences, int len) =>
        Enumerable.Range(0, docs).Select(d => (IReadOnlyList<int[]>)Enumerable.Range(0, sentences)
            .Select(s => Enumerable.Range(0, len).Select(t => 1000 * (d + 1) + 10 * s + t).ToArray()).ToList()).ToList();

    [Fact]
    public void ExamplesFitAndHaveBertLayout()
    {
        var o = new PretrainingDataOptions { MaxSeqLength = 32, ShortSeqProb = 0 };
        var ex = PretrainingExamples.CreateNspExamples(Docs(40, 12, 7), o, Cls, Sep, seed: 1);
        Assert.NotEmpty(ex);
        foreach (var e in ex)
        {
            Assert.True(e.InputIds.Length <= 32);
            Assert.Equal(Cls, e.InputIds[0]);
            Assert.Equal(Sep, e.InputIds[^1]);
            int firstSep = Array.IndexOf(e.InputIds, Sep);
            Assert.True(firstSep >= 2 && firstSep < e.InputIds.Length - 2, "both segments non-empty");
            Assert.All(e.TokenTypeIds.Take(firstSep + 1), t => Assert.Equal(0, t));
            Assert.All(e.TokenTypeIds.Skip(firstSep + 1), t => Assert.Equal(1, t));
            // B continues A's document unless it is a random next.
            int docA = e.InputIds[1] / 1000, docB = e.InputIds[firstSep + 1] / 1000;
            if (!e.IsRandomNext) Assert.Equal(docA, docB);
            else Assert.NotEqual(docA, docB);
        }
        // Half the multi-sentence chunks get a random B; a one-sentence chunk (at a document's end) always does.
        double randomShare = ex.Count(e => e.IsRandomNext) / (double)ex.Count;
        Assert.InRange(randomShare, 0.4, 0.7);
    }

    [Fact]
    public void SameSeedSameExamplesOtherSeedOthers()
    {
        var o = new PretrainingDataOptions { MaxSeqLength = 24 };
        var a = PretrainingExamples.CreateNspExamples(Docs(5, 10, 5), o, Cls, Sep, 7);
        var b = PretrainingExamples.CreateNspExamples(Docs(5, 10, 5), o, Cls, Sep, 7);
        var c = PretrainingExamples.CreateNspExamples(Docs(5, 10, 5), o, Cls, Sep, 8);
        Assert.Equal(a.Select(e => string.Join(",", e.InputIds)), b.Select(e => string.Join(",", e.InputIds)));
        Assert.NotEqual(a.Select(e => string.Join(",", e.InputIds)), c.Select(e => string.Join(",", e.InputIds)));
    }

    [Fact]
    public void MaskingFollowsTheRecipe()
    {
        var o = new PretrainingDataOptions { MaxSeqLength = 64, MaxPredictionsPerSeq = 20 };
        var ids = new[] { Cls }.Concat(Enumerable.Range(10, 40)).Append(Sep).Concat(Enumerable.Range(60, 20)).Append(Sep).ToArray(); // 63 tokens
        var types = ids.Select((_, i) => i > 41 ? 1 : 0).ToArray();
        var e = new NspExample(ids, types, false);
        int masked = 0, kept = 0, random = 0, total = 0;
        for (int seed = 0; seed < 400; seed++)
        {
            var rng = SplitMix.For(seed, 1);
            var m = PretrainingExamples.Mask(e, o, V, ref rng);
            Assert.Equal(9, m.MaskedPositions.Length);            // round(63 · 0.15) = 9
            Assert.Equal(m.MaskedPositions.OrderBy(p => p), m.MaskedPositions);
            foreach (var (p, k) in m.MaskedPositions.Select((p, k) => (p, k)))
            {
                Assert.NotEqual(Cls, ids[p]);
                Assert.NotEqual(Sep, ids[p]);
                Assert.Equal(ids[p], m.MaskedLabels[k]);
                total++;
                if (m.InputIds[p] == MaskId) masked++;
                else if (m.InputIds[p] == ids[p]) kept++;
                else random++;
            }
            for (int i = 0; i < ids.Length; i++)
                if (!m.MaskedPositions.Contains(i)) Assert.Equal(ids[i], m.InputIds[i]);
        }
        Assert.InRange(masked / (double)total, 0.77, 0.83);
        Assert.InRange(kept / (double)total, 0.08, 0.12 + 0.01);  // 10% plus random draws that hit the same id
        Assert.InRange(random / (double)total, 0.08, 0.12);
    }

    [Fact]
    public void WholeWordMaskTakesAllPiecesOfAWord()
    {
        var o = new PretrainingDataOptions { MaxSeqLength = 64, WholeWordMask = true, MaxPredictionsPerSeq = 30 };
        // words: 10 ##91 ##92 | 11 ##93 | 12 ... : ids ≥ 90 are continuations
        var body = new List<int>();
        for (int w = 0; w < 12; w++) { body.Add(10 + w); body.Add(90 + w % 5); }
        var ids = new[] { Cls }.Concat(body).Append(Sep).Concat(new[] { 40, 41, 42 }).Append(Sep).ToArray();
        var e = new NspExample(ids, ids.Select(_ => 0).ToArray(), false);
        for (int seed = 0; seed < 50; seed++)
        {
            var rng = SplitMix.For(seed);
            var m = PretrainingExamples.Mask(e, o, V, ref rng);
            var set = m.MaskedPositions.ToHashSet();
            for (int i = 1; i < ids.Length; i++)
                if (ids[i] >= 90) Assert.Equal(set.Contains(i - 1), set.Contains(i)); // a piece is masked iff its word start is
        }
    }
}
