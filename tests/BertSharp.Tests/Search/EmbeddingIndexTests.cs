using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using BertSharp.Search;

namespace BertSharp.Tests.Search;

public class EmbeddingIndexTests
{
    const string Model = "test/model";

    static float[][] RandomVectors(int count, int dim, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, dim).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray()).ToArray();
    }

    static EmbeddingIndex Build(IReadOnlyList<float[]> vectors, int dim, IReadOnlyList<string>? texts = null, IReadOnlyList<int>? lines = null, bool modelNormalizes = false)
    {
        using var b = new EmbeddingIndexBuilder(Model, dim, modelNormalizes, storeTexts: texts != null);
        b.AddRange(vectors, texts, lines);
        return b.Build();
    }

    /// <summary>Cosine in double precision, the reference the index is checked against.</summary>
    static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }

    /// <summary>The hits are the exact top k of the brute-force reference (up to float rounding at the boundary), sorted
    /// by score then row, each score the reference's.</summary>
    static void AssertExactTopK(SearchHit[] hits, float[][] rows, float[] query, int k)
    {
        Assert.Equal(Math.Min(k, rows.Length), hits.Length);
        var reference = rows.Select(r => Cosine(r, query)).ToArray();
        for (int i = 0; i + 1 < hits.Length; i++)
            Assert.True(hits[i].Score > hits[i + 1].Score || (hits[i].Score == hits[i + 1].Score && hits[i].Index < hits[i + 1].Index),
                $"hits {i} and {i + 1} out of order: ({hits[i].Index}, {hits[i].Score}) before ({hits[i + 1].Index}, {hits[i + 1].Score})");
        foreach (var h in hits) Assert.True(Math.Abs(h.Score - reference[h.Index]) < 1e-5, $"row {h.Index}: {h.Score} vs {reference[h.Index]}");
        Assert.Equal(hits.Length, hits.Select(h => h.Index).Distinct().Count());
        if (hits.Length == 0) return;
        var kept = hits.Select(h => h.Index).ToHashSet();
        float last = hits[^1].Score;
        for (int r = 0; r < rows.Length; r++)
            if (!kept.Contains(r)) Assert.True(reference[r] <= last + 1e-5, $"row {r} ({reference[r]}) beats the last hit ({last}) but was left out");
    }

    [Theory]
    [InlineData(1, 5, 1)]
    [InlineData(7, 17, 3)]
    [InlineData(7, 17, 10)]      // k > count: every row, sorted
    [InlineData(1000, 16, 5)]
    [InlineData(3000, 384, 10)]
    [InlineData(5003, 33, 100)]
    public void Top_k_is_the_brute_force_top_k(int count, int dim, int k)
    {
        var rows = RandomVectors(count, dim, seed: count + dim);
        var queries = RandomVectors(6, dim, seed: 99);
        using var index = Build(rows, dim);
        foreach (var width in new[] { DotKernels.Width.Vector512, DotKernels.Width.VectorT })
        {
            if (width == DotKernels.Width.Vector512 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated) continue;
            index.Kernel = width;
            foreach (int threads in new[] { 1, 2 })
            {
                index.Threads = threads;
                foreach (var q in queries) AssertExactTopK(index.Search(q, k), rows, q, k);
                var batch = index.Search(queries, k);
                for (int i = 0; i < queries.Length; i++) AssertExactTopK(batch[i], rows, queries[i], k);
            }
        }
    }

    [Fact]
    public void Equal_scores_are_ordered_by_row()
    {
        // rows are basis vectors e0, e1, e2, e0, e1, … (dot products exact): the query e1 scores 1 on rows 1, 4, 7, … and 0 elsewhere
        const int dim = 8, count = 30;
        var rows = Enumerable.Range(0, count).Select(i => { var v = new float[dim]; v[i % 3] = 1; return v; }).ToArray();
        var query = new float[dim];
        query[1] = 3;
        using var index = Build(rows, dim);
        index.Threads = 3;
        var hits = index.Search(query, 12);
        Assert.Equal([1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 0, 2], hits.Select(h => h.Index));
        Assert.Equal(Enumerable.Repeat(1f, 10).Concat([0f, 0f]), hits.Select(h => h.Score));
        var all = index.Search(query, 100);
        Assert.Equal(count, all.Length);
        Assert.Equal(Enumerable.Range(0, count).Where(i => i % 3 != 1), all.Skip(10).Select(h => h.Index));
    }

    [Fact]
    public void Zero_vectors_score_zero_and_a_zero_query_returns_the_first_rows()
    {
        const int dim = 20;
        var rows = RandomVectors(50, dim, 3);
        rows[7] = new float[dim];
        rows[31] = new float[dim];
        using var index = Build(rows, dim);
        Assert.All(index.GetVector(7).ToArray(), x => Assert.Equal(0f, x));
        var zeroHits = index.Search(new float[dim], 5);
        Assert.Equal([0, 1, 2, 3, 4], zeroHits.Select(h => h.Index));
        Assert.All(zeroHits, h => Assert.Equal(0f, h.Score));
        var q = RandomVectors(1, dim, 4)[0];
        var hits = index.Search(q, 50);
        Assert.Equal(0f, hits.Single(h => h.Index == 7).Score);
        AssertExactTopK(hits, rows, q, 50);
    }

    [Fact]
    public void Rows_are_stored_at_unit_length_and_query_scale_does_not_matter()
    {
        const int dim = 40;
        var rows = RandomVectors(200, dim, 5);
        using var index = Build(rows, dim);
        for (int i = 0; i < rows.Length; i++)
        {
            double norm = Math.Sqrt(index.GetVector(i).ToArray().Sum(x => (double)x * x));
            Assert.True(Math.Abs(norm - 1) < 1e-6, $"row {i}: norm {norm}");
        }
        var q = RandomVectors(1, dim, 6)[0];
        var scaled = q.Select(x => x * 4).ToArray();   // a power of two: the same unit vector to the bit
        Assert.Equal(index.Search(q, 10), index.Search(scaled, 10));
        // a row queried with its own vector comes first, at 1
        var self = index.Search(rows[123], 1)[0];
        Assert.Equal(123, self.Index);
        Assert.True(Math.Abs(self.Score - 1) < 1e-6);
    }

    [Fact]
    public void Thread_counts_batches_and_single_queries_give_the_same_bits()
    {
        const int dim = 64;
        var rows = RandomVectors(20_000, dim, 7);
        var queries = RandomVectors(11, dim, 8);
        using var index = Build(rows, dim);
        foreach (var width in new[] { DotKernels.Width.Vector512, DotKernels.Width.VectorT })
        {
            if (width == DotKernels.Width.Vector512 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated) continue;
            index.Kernel = width;
            index.Threads = 1;
            var expected = index.Search(queries, 25);
            for (int i = 0; i < queries.Length; i++) Assert.Equal(expected[i], index.Search(queries[i], 25));
            foreach (int threads in new[] { 2, 3, 8 })
            {
                index.Threads = threads;
                var got = index.Search(queries, 25);
                for (int i = 0; i < queries.Length; i++)
                {
                    Assert.Equal(expected[i], got[i]);   // records: index, score (bits), line, text
                    Assert.Equal(expected[i].Select(h => BitConverter.SingleToInt32Bits(h.Score)), got[i].Select(h => BitConverter.SingleToInt32Bits(h.Score)));
                }
            }
        }
    }

    [Fact]
    public void Hits_carry_line_numbers_and_texts()
    {
        var rows = RandomVectors(4, 8, 9);
        string[] texts = ["first", "zweite Zeile – ü", "", "四"];
        using var index = Build(rows, 8, texts, lines: [2, 5, 6, 10]);
        var hit = index.Search(rows[1], 1)[0];
        Assert.Equal(new SearchHit(1, hit.Score, 5, "zweite Zeile – ü"), hit);
        using var bare = Build(rows, 8);
        Assert.False(bare.HasTexts);
        var plain = bare.Search(rows[3], 1)[0];
        Assert.Equal(4, plain.Line);   // row + 1 when no lines were given
        Assert.Null(plain.Text);
    }

    [Fact]
    public void Save_and_load_round_trip_bit_exact()
    {
        using var dir = new TempDir();
        const int dim = 24;
        var rows = RandomVectors(300, dim, 10);
        rows[5] = new float[dim];
        var texts = Enumerable.Range(0, rows.Length).Select(i => i % 7 == 0 ? $"tëxt {i} ✓ with\ttab" : $"text {i}").ToArray();
        var lines = Enumerable.Range(0, rows.Length).Select(i => 3 * i + 1).ToArray();
        using var index = Build(rows, dim, texts, lines, modelNormalizes: true);
        string path = dir.File("corpus.index");
        index.Save(path);
        Assert.Equal(path, index.Path);
        using var loaded = EmbeddingIndex.Load(path);
        Assert.Equal((index.Count, index.Dimension, index.Model, index.ModelNormalizes, index.HasTexts),
            (loaded.Count, loaded.Dimension, loaded.Model, loaded.ModelNormalizes, loaded.HasTexts));
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.True(index.GetVector(i).SequenceEqual(loaded.GetVector(i)), $"row {i} differs");
            Assert.Equal(lines[i], loaded.GetLine(i));
            Assert.Equal(texts[i], loaded.GetText(i));
        }
        var queries = RandomVectors(5, dim, 11);
        var before = index.Search(queries, 7);
        var after = loaded.Search(queries, 7);
        for (int i = 0; i < queries.Length; i++) Assert.Equal(before[i], after[i]);

        // saved again from the mapped index: the same bytes
        string again = dir.File("again.index");
        loaded.Save(again);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(again));
        Assert.Equal(path, loaded.Path);
    }

    [Fact]
    public void The_matrix_is_a_npy_array_at_the_offset_the_header_names()
    {
        using var dir = new TempDir();
        var rows = RandomVectors(3, 5, 12);
        using var index = Build(rows, 5);
        string path = dir.File("x.index");
        index.Save(path);
        var bytes = File.ReadAllBytes(path);
        long npyOffset = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(32));
        long matrixOffset = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(40));
        Assert.Equal(0, matrixOffset % 64);
        Assert.Equal(0x93, bytes[npyOffset]);
        Assert.Equal("NUMPY", Encoding.ASCII.GetString(bytes, (int)npyOffset + 1, 5));
        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan((int)npyOffset + 8));
        Assert.Equal(matrixOffset, npyOffset + 10 + headerLength);
        string dict = Encoding.ASCII.GetString(bytes, (int)npyOffset + 10, headerLength);
        Assert.StartsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }", dict);
        Assert.EndsWith("\n", dict);
        var matrix = MemoryMarshal.Cast<byte, float>(bytes.AsSpan((int)matrixOffset, 3 * 5 * 4));
        for (int i = 0; i < 3; i++) Assert.True(matrix.Slice(i * 5, 5).SequenceEqual(index.GetVector(i)));
    }

    [Fact]
    public void An_empty_index_and_one_without_texts_round_trip()
    {
        using var dir = new TempDir();
        using (var empty = new EmbeddingIndexBuilder(Model, 3).Build())
        {
            empty.Save(dir.File("empty.index"));
            Assert.Empty(empty.Search(new float[] { 1, 2, 3 }, 5));
        }
        using (var loaded = EmbeddingIndex.Load(dir.File("empty.index")))
        {
            Assert.Equal(0, loaded.Count);
            Assert.Empty(loaded.Search(new float[] { 1, 2, 3 }, 5));
        }
        var rows = RandomVectors(10, 3, 13);
        using (var bare = Build(rows, 3)) bare.Save(dir.File("bare.index"));
        using var back = EmbeddingIndex.Load(dir.File("bare.index"));
        Assert.False(back.HasTexts);
        Assert.Null(back.GetText(4));
        Assert.Equal(5, back.GetLine(4));
    }

    static string SavedIndex(TempDir dir, string name = "c.index")
    {
        using var index = Build(RandomVectors(40, 16, 14), 16, Enumerable.Range(0, 40).Select(i => $"line {i}").ToList());
        string path = dir.File(name);
        index.Save(path);
        return path;
    }

    static string LoadError(string path) => Assert.Throws<BertSharpException>(() => EmbeddingIndex.Load(path)).Message;

    [Fact]
    public void A_truncated_index_is_a_one_line_error_naming_the_file()
    {
        using var dir = new TempDir();
        string path = SavedIndex(dir);
        var bytes = File.ReadAllBytes(path);
        foreach (int length in new[] { 5, 50, 96, 100, 300, bytes.Length / 2, bytes.Length - 1 })
        {
            string cut = dir.File($"cut{length}.index");
            File.WriteAllBytes(cut, bytes[..length]);
            string message = LoadError(cut);
            Assert.StartsWith($"{cut}: truncated", message);
            Assert.DoesNotContain('\n', message);
        }
        File.WriteAllBytes(dir.File("empty.index"), []);
        Assert.Contains("is empty, not an embedding index", LoadError(dir.File("empty.index")));
    }

    [Fact]
    public void A_file_that_is_not_an_index_or_is_damaged_is_a_clear_error()
    {
        using var dir = new TempDir();
        string path = SavedIndex(dir);
        var bytes = File.ReadAllBytes(path);
        string Damaged(string name, Action<byte[]> change)
        {
            var copy = (byte[])bytes.Clone();
            change(copy);
            File.WriteAllBytes(dir.File(name), copy);
            return LoadError(dir.File(name));
        }
        File.WriteAllText(dir.File("corpus.txt"), "A man is playing a guitar.\nA woman is slicing an onion.\n");
        Assert.Equal($"{dir.File("corpus.txt")}: not an embedding index: it does not start with BSEMBIDX (build one with `bert search index`)", LoadError(dir.File("corpus.txt")));
        Assert.Contains("index format version 2; this BertSharp reads version 1", Damaged("v2.index", b => b[8] = 2));
        Assert.Contains("the header's checksum does not match", Damaged("header.index", b => b[20] ^= 1));
        Assert.Contains("the header's checksum does not match", Damaged("model.index", b => b[97] ^= 1));
        Assert.Contains("the checksum of its line and text tables does not match", Damaged("text.index", b => b[^20] ^= 1));
        File.WriteAllBytes(dir.File("long.index"), [.. bytes, 0, 0, 0]);
        Assert.Contains("3 bytes past the end", LoadError(dir.File("long.index")));
        Assert.Equal($"{dir.File("missing.index")}: file not found", LoadError(dir.File("missing.index")));
    }

    [Fact]
    public void Bad_queries_and_vectors_are_one_line_errors()
    {
        using var dir = new TempDir();
        using var index = EmbeddingIndex.Load(SavedIndex(dir));
        var e = Assert.Throws<BertSharpException>(() => index.Search(new float[16], 0));
        Assert.Equal("topK must be 1 or more (got 0)", e.Message);
        Assert.Equal(["topK"], e.Parameters);
        e = Assert.Throws<BertSharpException>(() => index.Search(new float[384], 5));
        Assert.Equal($"{index.Path}: the query has 384 numbers; the index holds 16-dimension vectors of {Model}", e.Message);
        var nan = new float[16];
        nan[3] = float.NaN;
        Assert.Contains("query 2 holds NaN at position 3", Assert.Throws<BertSharpException>(() => index.Search([new float[16], nan], 5)).Message);

        e = Assert.Throws<BertSharpException>(() => index.CheckQueryModel("other/model", 384));
        Assert.Equal($"{index.Path}: built with {Model} (16 dimensions); the query model other/model makes 384-dimension vectors: query with the index's model, or rebuild the index with this one", e.Message);
        Assert.Throws<BertSharpException>(() => index.CheckQueryModel("other/model", 16));
        index.CheckQueryModel("other/model", 16, allowOtherModel: true);
        index.CheckQueryModel(Model, 16);

        using var b = new EmbeddingIndexBuilder(Model, 4);
        Assert.Contains("vector 1 has 3 numbers", Assert.Throws<BertSharpException>(() => b.Add(new float[3], "x")).Message);
        Assert.Contains("vector 1 holds Infinity at position 0", Assert.Throws<BertSharpException>(() => b.Add(new[] { float.PositiveInfinity, 0, 0, 0 }, "x")).Message);
        Assert.Contains("vector 1 has no text", Assert.Throws<BertSharpException>(() => b.Add(new float[4])).Message);
    }

    [Fact]
    public void The_same_model_by_another_path_to_its_folder_is_the_same_model()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("m"));
        Assert.True(EmbeddingIndex.SameModel(dir.File("m"), dir.File("m") + "/"));
        Assert.True(EmbeddingIndex.SameModel(dir.File("m"), Path.Combine(dir.Path, ".", "m")));
        Assert.False(EmbeddingIndex.SameModel(dir.File("m"), "org/m"));
    }
}
